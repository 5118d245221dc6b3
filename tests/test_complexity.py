"""Every function in src/ worse than radon grade C is one docs/development.md lists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

radon_complexity = pytest.importorskip("radon.complexity")  # the dev extra

ROOT = Path(__file__).parents[1]
SRC = ROOT / "src" / "blockpilot"
WORST_ALLOWED = 20  # grade C


def _too_complex() -> set[str]:
    """``module:function`` for each function or method above grade C (classes are not scored)."""
    found: set[str] = set()
    for path in sorted(SRC.rglob("*.py")):
        for block in radon_complexity.cc_visit(path.read_text(encoding="utf-8")):
            for item in getattr(block, "methods", [block]):
                if item.complexity > WORST_ALLOWED:
                    name = f"{item.classname}.{item.name}" if item.classname else item.name
                    found.add(f"{path.relative_to(SRC).as_posix()}:{name}")
    return found


def _documented() -> set[str]:
    text = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    section = text.split("## Complexity", 1)[1].split("\n## ", 1)[0]
    listed: set[str] = set()
    for module, names in re.findall(r"^\| `([\w/]+\.py)` ((?:`[\w.]+`(?:, )?)+) \|", section, re.M):
        listed |= {f"{module}:{name}" for name in re.findall(r"`([\w.]+)`", names)}
    return listed


def test_every_function_worse_than_grade_c_is_a_listed_exception() -> None:
    unlisted = sorted(_too_complex() - _documented())
    assert unlisted == [], (
        "split these, or add them with one line why to docs/development.md#complexity"
    )
