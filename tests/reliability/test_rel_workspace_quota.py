"""One user cannot take the service down by filling its disk (docs/storage.md).

- ``BLOCKPILOT_MAX_WORKSPACE_BYTES_PER_USER``: a write past a user's quota is a typed
  ``quota_exceeded`` at every door (Python, HTTP 413, a block's result), counted as an
  upload streams, with no partial file, racing writes included; other users are unaffected.
- On a disk that is really full (a small tmpfs; needs root, else skipped): deleting a file
  still works, ``/readyz`` says the database cannot be written, failing writes are typed
  (503, never 500), and a restart stops with exit code 5 and a clear message.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from blockpilot.api import create_app
from blockpilot.cli.app import app as cli_app
from blockpilot.errors import QuotaExceededError, StorageUnusableError, WorkspaceError
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from tests import bp_database
from tests.workspace_backends import stored_blobs

WRITE_FILE_ID = "5a0a5a52-6f3c-4c55-8c39-1f0f5d0b7d21"
QUOTA = 10_000
SQLITE = bp_database.BACKEND == "sqlite"


@pytest.fixture
def pilot_settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(max_workspace_bytes_per_user=QUOTA)


def _client(pilot: Pilot, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(pilot)),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}"},
    )


@pytest.mark.workspace_backends
async def test_writes_past_the_quota_are_refused_at_every_door(pilot: Pilot) -> None:
    alice, alice_key = await pilot.users.create("alice")
    bob, _ = await pilot.users.create("bob")
    workspace = await pilot.workspaces.get_or_create_workspace(alice.id)
    files = pilot.workspaces.for_workspace(workspace)
    await files.write("/a.bin", b"a" * 6000)

    with pytest.raises(QuotaExceededError) as caught:
        await files.write("/b.bin", b"b" * 5000)
    assert caught.value.code == "quota_exceeded" and str(QUOTA) in caught.value.message

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"c" * 1000

    with pytest.raises(QuotaExceededError):
        await files.write_stream("/c.bin", chunks())

    async with _client(pilot, alice_key) as client:
        put = await client.put("/api/v1/workspace/files/d.bin", content=b"d" * 5000)
        assert put.status_code == 413, put.text
        assert put.json()["error"]["code"] == "quota_exceeded"
        # Replacing a file frees what it replaces: 9,000 bytes in place of 6,000 fit.
        put = await client.put("/api/v1/workspace/files/a.bin", content=b"A" * 9000)
        assert put.status_code == 200, put.text

    outcome = json.loads(
        (
            await pilot.call_tool(
                "run_block",
                {
                    "block_id": WRITE_FILE_ID,
                    "input_data": {"path": "/e.txt", "content": "e" * 2000},
                },
                user_id=alice.id,
            )
        ).to_json()
    )
    assert outcome["type"] == "error" and outcome["details"] == {"cause": "quota_exceeded"}
    assert "quota" in outcome["message"]

    assert [(f.path, f.size_bytes) for f in await files.list()] == [("/a.bin", 9000)]
    assert await stored_blobs(pilot, workspace.id) == 1  # no temp file, no orphan blob
    # Another user's quota is their own.
    bob_files = pilot.workspaces.for_workspace(
        await pilot.workspaces.get_or_create_workspace(bob.id)
    )
    await bob_files.write("/b.bin", b"b" * 9000)
    # And deleting frees room.
    assert await files.delete("/a.bin")
    await files.write("/f.bin", b"f" * QUOTA)


@pytest.mark.workspace_backends
async def test_an_upload_is_refused_as_it_streams(pilot: Pilot) -> None:
    """The quota is counted on the bytes as they arrive: a stream far over it is stopped
    after about the quota, not read to its end."""
    alice, _ = await pilot.users.create("alice")
    workspace = await pilot.workspaces.get_or_create_workspace(alice.id)
    files = pilot.workspaces.for_workspace(workspace)
    taken = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal taken
        while True:
            taken += 1
            yield b"x" * 1000

    with pytest.raises(QuotaExceededError):
        await files.write_stream("/endless.bin", endless())
    assert taken <= QUOTA // 1000 + 1
    assert await files.list() == [] and await stored_blobs(pilot, workspace.id) == 0


@pytest.mark.workspace_backends
async def test_racing_writes_stay_within_the_quota(pilot: Pilot) -> None:
    alice, _ = await pilot.users.create("alice")
    workspace = await pilot.workspaces.get_or_create_workspace(alice.id)
    files = pilot.workspaces.for_workspace(workspace)
    results = await asyncio.gather(
        *(files.write(f"/race/{i}.bin", b"r" * 1500) for i in range(20)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, QuotaExceededError) for r in refused), refused
    stored = await files.list()
    assert len(stored) == 20 - len(refused) == QUOTA // 1500
    assert sum(f.size_bytes for f in stored) <= QUOTA
    assert await stored_blobs(pilot, workspace.id) == len(stored)


def test_the_quota_setting_is_read_from_the_environment(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings_factory().max_workspace_bytes_per_user == 1024**3  # the default: 1 GiB
    monkeypatch.setenv("BLOCKPILOT_MAX_WORKSPACE_BYTES_PER_USER", "0")
    assert Settings.load().max_workspace_bytes_per_user == 0  # 0: no quota


# ------------------------------------------------------------------------ a really full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs (root only; skipped where it cannot be mounted)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def _fill(disk: Path) -> None:
    """Fill *disk* to the last byte with a file nobody in blockpilot knows about."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 1 << 12, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError:
                    break
    finally:
        os.close(fd)


def _shrink_wal(database: Path) -> None:
    """Checkpoint and truncate SQLite's WAL, so the next write needs new disk space (a WAL
    that once grew is reused in place and would hide a full disk)."""
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


async def test_a_full_disk_leaves_deletes_working_and_is_reported(
    small_disk: Path, settings_factory: Callable[..., Settings]
) -> None:
    home = small_disk / "home"
    settings = settings_factory(home=home, max_workspace_bytes_per_user=0)
    pilot = await Pilot.open(settings)
    try:
        alice, alice_key = await pilot.users.create("alice")
        bob, bob_key = await pilot.users.create("bob")
        files = pilot.workspaces.for_workspace(
            await pilot.workspaces.get_or_create_workspace(alice.id)
        )
        await files.write("/big.bin", os.urandom(1024 * 1024))
        if SQLITE:
            _shrink_wal(home / "blockpilot.db")
        _fill(small_disk)

        async with _client(pilot, bob_key) as bob_client:
            upload = await bob_client.put("/api/v1/workspace/files/x.bin", content=b"x" * 50_000)
            assert upload.status_code in (400, 503), upload.text  # typed, never a 500
            assert upload.json()["error"]["code"] in ("workspace_error", "database_unavailable")
            ready = await bob_client.get("/readyz")
            if SQLITE:
                assert ready.status_code == 503, ready.text
                assert ready.json()["checks"] == {"database": "not_writable"}
                credential = await bob_client.post(
                    "/api/v1/credentials",
                    json={"provider": "openai", "type": "api_key", "api_key": "sk-canary-full"},
                )
                assert credential.status_code == 503, credential.text
                assert credential.json()["error"]["code"] == "database_unavailable"
            else:
                assert ready.status_code == 200  # the database has its own disk

        async with _client(pilot, alice_key) as alice_client:
            deleted = await alice_client.delete("/api/v1/workspace/files/big.bin")
            assert deleted.status_code == 204, deleted.text
            assert (await alice_client.get("/api/v1/workspace/files")).json()["files"] == []
            assert (await alice_client.get("/readyz")).status_code == 200  # room again
    finally:
        await pilot.close()

    if not SQLITE:
        return
    _fill(small_disk)
    with pytest.raises(StorageUnusableError, match="Storage is full"):
        await Pilot.open(settings)
    env = {
        "BLOCKPILOT_HOME": str(home),
        "BLOCKPILOT_ENCRYPTION_KEYS": settings.encryption_keys[0].get_secret_value(),
    }
    result = await asyncio.to_thread(CliRunner().invoke, cli_app, ["users", "list"], env=env)
    assert result.exit_code == 5, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error: Storage is full"), result.stderr
    assert "Traceback" not in result.stderr
    (small_disk / "filler").unlink()
    async with await Pilot.open(settings) as reopened:
        assert [u.name for u in await reopened.users.list()] == ["alice", "bob"]


async def test_a_failed_workspace_write_on_a_full_disk_is_typed(
    small_disk: Path, settings_factory: Callable[..., Settings]
) -> None:
    pilot = await Pilot.open(settings_factory(home=small_disk / "home"))
    try:
        alice, _ = await pilot.users.create("alice")
        files = pilot.workspaces.for_workspace(
            await pilot.workspaces.get_or_create_workspace(alice.id)
        )
        _fill(small_disk)
        with pytest.raises(WorkspaceError, match="No space left"):
            await files.write("/a.bin", b"a" * 100_000)
        assert await files.list() == []
    finally:
        await pilot.close()
