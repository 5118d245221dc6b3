"""The README and the docs stay true: the README's example runs and its test command is CI's;
the tables in docs/ (exit codes, configuration, HTTP errors) match the code."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

from blockpilot.cli.errors import EXIT_CODES
from blockpilot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(page: str, title: str) -> str:
    """The part of docs/<page> from *title* to the next heading of the same level."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    start = text.index(title)
    level = title.split(" ", 1)[0]
    end = text.find(f"\n{level} ", start + len(title))
    return text[start : end if end != -1 else None]


@pytest.mark.slow
def test_the_library_example_runs(tmp_path: Path) -> None:
    example = re.findall(r"```python\n(.*?)```", README, re.S)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPILOT_")}
    env["BLOCKPILOT_HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", example], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["setup_requirements", "block_output {'result': ['HELLO!']}"]


def test_the_exit_code_table_lists_every_code_with_its_exit_code() -> None:
    documented: dict[str, int] = {}
    for exit_code, codes in re.findall(
        r"^\| (\d+) \|[^|]*\|([^|]*)\|$", _section("cli.md", "### Exit codes"), re.M
    ):
        for code in re.findall(r"`([a-z_]+)`", codes):
            documented[code] = int(exit_code)
    cli_only = {"usage", "interrupted"}
    assert documented == {code: exit for code, exit in EXIT_CODES.items() if code not in cli_only}


def test_the_configuration_table_lists_every_setting() -> None:
    table = _section("configuration.md", "# Configuration")
    for name in Settings.model_fields:
        assert f"`BLOCKPILOT_{name.upper()}`" in table, name
    for dynamic in (
        "_BASE_URL",
        "_CLIENT_ID",
        "_CLIENT_SECRET",
        "_TOKEN_URL",
        "_AUTHORIZE_URL",
        "_API_KEY",
    ):
        assert dynamic in table


def test_ci_runs_exactly_the_readme_test_command() -> None:
    command = ".venv/bin/python -m pytest -p no:cacheprovider"
    assert f"```bash\n{command}\n```" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.rstrip().splitlines()[-1] == command
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


def test_the_http_error_table_lists_every_code_with_its_status() -> None:
    import blockpilot

    # Every error class, wherever defined (e.g. the chat client's), whatever ran before;
    # not entry points or Alembic's scripts, which run when imported.
    for module in pkgutil.walk_packages(blockpilot.__path__, "blockpilot."):
        if not module.name.endswith("__main__") and ".migrations" not in module.name:
            importlib.import_module(module.name)
    from blockpilot.api.errors import _HTTP_CODES, http_error_for
    from blockpilot.errors import BlockpilotError

    documented: dict[str, int] = {}
    rows = re.findall(
        r"^\| (\d{3}) \|[^|]*\|([^|]*)\|$", _section("service.md", "## HTTP errors"), re.M
    )
    for status, codes in rows:
        for code in re.findall(r"`([a-z_]+)`", codes):
            documented[code] = int(status)
    classes, pending = [], [BlockpilotError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("blockpilot."):  # not the tests' own subclasses
            classes.append(cls)
    expected = {cls.code: http_error_for(cls).status for cls in classes}
    expected |= {code: status for status, code in _HTTP_CODES.items()}
    expected |= {"invalid_request": 422, "internal_error": 500}  # validation errors, last resort
    expected |= {"database_unavailable": 503}  # api.middleware: the database cannot be reached
    assert documented == expected
