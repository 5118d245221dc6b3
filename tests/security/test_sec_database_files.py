"""The SQLite database and its ``-wal``/``-shm`` files are readable by their owner only
(0600), also when the data folder already existed (its 0700 then not applied) and the
umask is the usual 022; before, ``blockpilot.db`` was created 0644 (docs/storage.md).
SQLite only: PostgreSQL keeps its own files."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from tests import bp_database

pytestmark = pytest.mark.skipif(bp_database.BACKEND != "sqlite", reason="SQLite files only")

CANARY = "sk-canary-file-modes-0600"


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_database_files_are_0600_in_a_folder_that_existed(
    settings_factory: Callable[..., Settings], home: Path, usual_umask: None
) -> None:
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    pilot = await Pilot.open(settings_factory())
    try:
        user, _ = await pilot.users.create("alice")
        await pilot.add_credentials(
            user.id, {"provider": "openai", "type": "api_key", "api_key": CANARY}
        )
        files = {name: home / name for name in ("blockpilot.db", "blockpilot.db-wal")}
        files["blockpilot.db-shm"] = home / "blockpilot.db-shm"
        for name, path in files.items():
            assert path.exists(), name
            assert _mode(path) == 0o600, (name, oct(_mode(path)))
    finally:
        await pilot.close()
    assert _mode(home / "blockpilot.db") == 0o600


async def test_a_database_created_world_readable_is_narrowed(
    settings_factory: Callable[..., Settings], home: Path, usual_umask: None
) -> None:
    settings = settings_factory()
    async with await Pilot.open(settings) as pilot:
        await pilot.users.create("alice")
    database = home / "blockpilot.db"
    os.chmod(database, 0o644)  # as versions before this fix created it
    async with await Pilot.open(settings) as pilot:
        assert [u.name for u in await pilot.users.list()] == ["alice"]
        assert _mode(database) == 0o600
        for suffix in ("-wal", "-shm"):
            companion = home / f"blockpilot.db{suffix}"
            if companion.exists():
                assert _mode(companion) == 0o600, suffix
