"""A damaged SQLite database stops start-up with exit code 5 and a clear message
(docs/storage.md); it never starts empty over a file that existed.

Before: a damaged header or middle page was exit 1 "unexpected failure", a damaged tail
started (``/readyz`` ready) and then answered 500s, and a 0-byte file was silently
re-initialised as a new, empty database while the key file and workspace files remained.
SQLite only: PostgreSQL checks its own pages.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from blockpilot.cli.app import app as cli_app
from blockpilot.errors import StorageUnusableError
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from tests import bp_database

pytestmark = pytest.mark.skipif(
    bp_database.BACKEND != "sqlite", reason="SQLite files only (PostgreSQL checks its own pages)"
)

STORE_VALUE_ID = "1ff065e9-88e8-4358-9d82-8dc91f622ba9"
PAGE = 4096


async def _stored_database(settings: Settings) -> Path:
    """A database with users, a credential, runs and a file; closed (WAL folded in)."""
    async with await Pilot.open(settings) as pilot:
        user, _ = await pilot.users.create("alice")
        await pilot.add_credentials(
            user.id, {"provider": "openai", "type": "api_key", "api_key": "sk-canary-damaged"}
        )
        for i in range(300):
            await pilot.call_tool(
                "run_block",
                {"block_id": STORE_VALUE_ID, "input_data": {"input": f"run {i} " + "v" * 400}},
                user_id=user.id,
            )
        files = pilot.workspaces.for_workspace(
            await pilot.workspaces.get_or_create_workspace(user.id)
        )
        await files.write("/kept.txt", "kept")
    database = settings.home / "blockpilot.db"
    assert not (settings.home / "blockpilot.db-wal").exists()
    assert database.stat().st_size > 40 * PAGE
    return database


def _overwrite(database: Path, offset: int, length: int) -> None:
    with database.open("r+b") as handle:
        handle.seek(offset)
        handle.write(os.urandom(length))


def _damage(database: Path, how: str) -> None:
    size = database.stat().st_size
    pages = size // PAGE
    if how == "header":
        _overwrite(database, 0, 100)
    elif how == "middle":
        _overwrite(database, (pages // 2) * PAGE, PAGE)
    elif how == "tail":
        _overwrite(database, (pages - 3) * PAGE, 3 * PAGE)
    elif how == "truncated tail":
        os.truncate(database, (pages - 3) * PAGE)
    elif how == "empty":
        os.truncate(database, 0)
    else:  # pragma: no cover
        raise AssertionError(how)


DAMAGE = ["header", "middle", "tail", "truncated tail", "empty"]


@pytest.mark.parametrize("how", DAMAGE)
async def test_a_damaged_database_stops_start_up_with_exit_code_5(
    how: str, settings_factory: Callable[..., Settings], home: Path
) -> None:
    settings = settings_factory()
    database = await _stored_database(settings)
    _damage(database, how)
    damaged = database.read_bytes()

    with pytest.raises(StorageUnusableError) as caught:
        await Pilot.open(settings)
    message = caught.value.message
    assert str(database) in message
    assert ("empty (0 bytes)" if how == "empty" else "damaged") in message, message
    assert "backup" in message

    env = {
        "BLOCKPILOT_HOME": str(home),
        "BLOCKPILOT_ENCRYPTION_KEYS": settings.encryption_keys[0].get_secret_value(),
    }
    result = await asyncio.to_thread(CliRunner().invoke, cli_app, ["users", "list"], env=env)
    assert result.exit_code == 5, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error: The database") and "Traceback" not in result.stderr
    assert "sk-canary-damaged" not in result.stdout + result.stderr
    # Nothing was changed, nothing was started over it.
    assert database.read_bytes() == damaged
    assert (home / "workspaces").exists()


@pytest.mark.slow
def test_blockpilot_serve_refuses_a_damaged_database(
    settings_factory: Callable[..., Settings], home: Path
) -> None:
    settings = settings_factory()
    database = asyncio.run(_stored_database(settings))
    _damage(database, "tail")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPILOT_")}
    env.update(
        BLOCKPILOT_HOME=str(home),
        BLOCKPILOT_ENCRYPTION_KEYS=settings.encryption_keys[0].get_secret_value(),
    )
    done = subprocess.run(
        [str(Path(sys.executable).with_name("blockpilot")), "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 5, done.stderr[-2000:]
    assert "is damaged" in done.stderr and "Traceback" not in done.stderr


async def test_an_undamaged_database_starts(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    await _stored_database(settings)
    async with await Pilot.open(settings) as pilot:
        assert [u.name for u in await pilot.users.list()] == ["alice"]


async def test_a_new_installation_starts_empty(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """No file at all is a new installation, not damage."""
    key = settings_factory().encryption_keys  # (the fixture also clears BLOCKPILOT_* variables)
    settings = Settings.load(home=tmp_path / "new-home", encryption_keys=key)
    assert not (settings.home / "blockpilot.db").exists()
    async with await Pilot.open(settings) as pilot:
        assert await pilot.users.list() == []
