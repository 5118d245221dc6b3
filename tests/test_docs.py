"""The docs exist and build: every page is in the MkDocs nav, every `docs/…` a comment cites
is there, and `mkdocs build --strict` passes where MkDocs is installed (the `docs` extra)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _nav_pages() -> set[str]:
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text[text.index("\nnav:") :]
    return set(re.findall(r":\s*([\w/.-]+\.md)\s*$", nav, re.M))


def test_every_docs_page_is_in_the_nav() -> None:
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages - _nav_pages() == set(), "add these pages to nav in mkdocs.yml"
    assert _nav_pages() - pages == set(), "nav names pages that do not exist"


# Paths in a GitHub repository that blocks give as examples, not pages of these docs.
EXAMPLE_PATHS = {"README.md", "notes.md"}


def test_every_docs_page_a_comment_cites_exists() -> None:
    cited: dict[str, str] = {}
    for folder in ("src", "tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for page in re.findall(r"(?<![\w/.])docs/([\w/-]+\.md)", text):
                if page not in EXAMPLE_PATHS:
                    cited.setdefault(page, str(path.relative_to(ROOT)))
    assert cited, "no comment cites docs/: the pattern is wrong"
    missing = {page: where for page, where in cited.items() if not (DOCS / page).is_file()}
    assert missing == {}


def test_no_comment_cites_documents_outside_the_repository() -> None:
    offenders = []
    for folder in ("src", "tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if path.name != "test_docs.py" and re.search(r"SPEC §|security-notes", text):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_docs_build_strictly(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="install the docs extra: pip install -e '.[docs]'")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "index.html").is_file()
    shutil.rmtree(tmp_path, ignore_errors=True)
