"""Fixtures for the CLI tests: a temporary home, a fixed key, an in-process runner."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from blockpilot.cli.app import app
from blockpilot.credentials.crypto import KeyRing

Invoke = Callable[..., Result]


@pytest.fixture
def key() -> str:
    return KeyRing.generate_key()


@pytest.fixture
def env(home: Path, key: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The CLI's environment: a temporary home and a fixed key; nothing of the developer's."""
    for name in list(os.environ):
        if name.startswith("BLOCKPILOT_"):
            monkeypatch.delenv(name)
    # A fixed width: tables must not depend on the terminal (xdist workers have none).
    return {"BLOCKPILOT_HOME": str(home), "BLOCKPILOT_ENCRYPTION_KEYS": key, "COLUMNS": "200"}


@pytest.fixture
def cli(env: dict[str, str]) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, **overrides: str) -> Result:
        return runner.invoke(app, list(args), env={**env, **overrides}, input=input)

    return invoke


@pytest.fixture
def demo(cli: Invoke) -> dict[str, str]:
    result = cli("users", "create", "demo")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)
