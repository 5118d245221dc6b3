"""The workspace guarantees on every blob backend: the local folder, the database and S3.

S3 is a real S3-compatible server (moto in server mode) on a local port; the database backend
runs on SQLite and, with ``BLOCKPILOT_TEST_DATABASE=postgresql``, on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import update

from blockpilot.errors import (
    ConfigurationError,
    QuotaExceededError,
    WorkspaceError,
    WorkspaceFileNotFoundError,
    WorkspacePathError,
    WorkspaceQuotaError,
)
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.storage.tables import workspace_blobs
from blockpilot.storage.workspace_blobs import DatabaseBlobStorage
from blockpilot.storage.workspace_holds import sweep_orphan_blobs
from blockpilot.workspaces.manager import WorkspaceFiles, sweep_temp_files
from tests import bp_database
from tests.workspace_backends import S3_SECRET_CANARY, expire_holds, live_holds, stored_blobs

MIB = 1024 * 1024


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _files_of(pilot: Pilot, name: str) -> WorkspaceFiles:
    user, _ = await pilot.users.create(name)
    return pilot.workspaces.for_workspace(await pilot.workspaces.get_or_create_workspace(user.id))


async def _pieces(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.fixture
async def files(make_pilot, workspace_url: str) -> WorkspaceFiles:
    pilot = await make_pilot(workspace_url=workspace_url)
    return await _files_of(pilot, "alice")


# --------------------------------------------------------------------------- the file API


@pytest.mark.workspace_backends
async def test_write_read_list_delete(files: WorkspaceFiles) -> None:
    record = await files.write("notes/today.md", "# Today\n")
    assert record.checksum == _sha(b"# Today\n") and record.size_bytes == 8
    assert await files.read("/notes/today.md") == b"# Today\n"
    info, data = await files.read_by_id(record.id)
    assert info.path == "/notes/today.md" and data == b"# Today\n"
    await files.write("notes/empty.txt", b"")
    assert await files.read("notes/empty.txt") == b""
    await files.write("other.txt", "x")
    assert [f.path for f in await files.list("notes")] == ["/notes/empty.txt", "/notes/today.md"]
    assert await files.delete("notes/today.md") is True
    assert await files.delete("notes/today.md") is False
    with pytest.raises(WorkspaceFileNotFoundError):
        await files.read("notes/today.md")
    for bad in ("../x", "a\x00b", ""):
        with pytest.raises(WorkspacePathError):
            await files.write(bad, "data")


@pytest.mark.workspace_backends
async def test_overwrite_removes_the_replaced_blob(
    make_pilot, workspace_url: str, workspace_backend: str
) -> None:
    pilot = await make_pilot(workspace_url=workspace_url)
    files = await _files_of(pilot, "alice")
    first = await files.write("doc.txt", "version one")
    second = await files.write("doc.txt", "version two, longer")
    assert second.id == first.id and await files.read("doc.txt") == b"version two, longer"
    assert await stored_blobs(pilot) == 1
    assert await files.delete("doc.txt")
    assert await stored_blobs(pilot) == 0


@pytest.mark.workspace_backends
async def test_users_never_see_each_others_files(make_pilot, workspace_url: str) -> None:
    pilot = await make_pilot(workspace_url=workspace_url)
    alice, bob = await _files_of(pilot, "alice"), await _files_of(pilot, "bob")
    secret = await alice.write("private/diary.txt", "alice only")
    await bob.write("private/diary.txt", "bob only")
    assert await alice.read("private/diary.txt") == b"alice only"
    with pytest.raises(WorkspaceFileNotFoundError):
        await bob.read_by_id(secret.id)
    assert await bob.delete("private/diary.txt") is True
    assert await alice.read("private/diary.txt") == b"alice only"


@pytest.mark.workspace_backends
async def test_size_limit_and_quota(make_pilot, workspace_url: str, workspace_backend: str) -> None:
    pilot = await make_pilot(
        workspace_url=workspace_url, max_file_bytes=10, max_workspace_bytes_per_user=15
    )
    files = await _files_of(pilot, "alice")
    with pytest.raises(WorkspaceQuotaError):
        await files.write("big.txt", "01234567890")
    with pytest.raises(WorkspaceQuotaError):
        await files.write_stream("big.txt", _pieces(b"x" * 11, 4))
    await files.write("a.txt", "0123456789")
    with pytest.raises(QuotaExceededError):
        await files.write("b.txt", "0123456789")
    with pytest.raises(QuotaExceededError):
        await files.write_stream("b.txt", _pieces(b"y" * 10, 3))
    assert [f.path for f in await files.list()] == ["/a.txt"]
    assert await stored_blobs(pilot) == 1


@pytest.mark.workspace_backends
async def test_a_large_stream_goes_through_in_bounded_memory(
    make_pilot, workspace_url: str, workspace_backend: str
) -> None:
    pilot = await make_pilot(workspace_url=workspace_url)
    files = await _files_of(pilot, "alice")
    data = os.urandom(MIB) * 24  # 24 MiB

    tracemalloc.start()
    try:
        record = await files.write_stream("big.bin", _pieces(data))
        written_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        got, chunks = await files.open_verified("big.bin")
        digest, size = hashlib.sha256(), 0
        async for piece in chunks:
            digest.update(piece)
            size += len(piece)
        read_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert record.size_bytes == size == len(data)
    assert digest.hexdigest() == record.checksum == got.checksum == _sha(data)
    # A few pieces in flight at most, never the whole file (24 MiB). On S3 the peak counts the
    # moto server running in this process, which keeps every object in memory.
    if workspace_backend != "s3":
        assert written_peak < 8 * MIB, written_peak
        assert read_peak < 8 * MIB, read_peak
    print(f"peak traced memory, 24 MiB file on {workspace_backend}: {written_peak=} {read_peak=}")


@pytest.mark.workspace_backends
async def test_a_stream_that_fails_mid_way_leaves_nothing(
    make_pilot, workspace_url: str, workspace_backend: str
) -> None:
    pilot = await make_pilot(workspace_url=workspace_url)
    files = await _files_of(pilot, "alice")
    await files.write("kept.txt", "the old content")

    async def broken() -> AsyncIterator[bytes]:
        for _ in range(6):
            yield os.urandom(MIB)
        raise RuntimeError("the client went away")

    for path in ("kept.txt", "new.txt"):
        with pytest.raises(RuntimeError, match="went away"):
            await files.write_stream(path, broken())
    assert [f.path for f in await files.list()] == ["/kept.txt"]
    assert await files.read("kept.txt") == b"the old content"
    assert await stored_blobs(pilot) == 1


@pytest.mark.workspace_backends
async def test_reads_during_overwrites_see_whole_versions(files: WorkspaceFiles) -> None:
    contents = [f"version {i} ".encode() * 2000 for i in range(12)]
    await files.write("hot.txt", contents[0])

    async def writer() -> None:
        for c in contents[1:]:
            await files.write("hot.txt", c)

    async def reader() -> list[bytes]:
        seen = []
        for _ in range(12):
            seen.append(await files.read("hot.txt"))
            await asyncio.sleep(0)
        return seen

    results = await asyncio.gather(writer(), *(reader() for _ in range(4)))
    for seen in results[1:]:
        assert all(data in contents for data in seen)


# --------------------------------------------------------------------------- database backend


async def test_a_damaged_chunk_is_detected(make_pilot) -> None:
    pilot = await make_pilot(workspace_url="database:")
    files = await _files_of(pilot, "alice")
    await files.write("doc.txt", "original")
    async with pilot.engine.begin() as conn:
        await conn.execute(update(workspace_blobs).values(data=b"tampered"))
    with pytest.raises(WorkspaceFileNotFoundError, match="checksum"):
        await files.read("doc.txt")
    with pytest.raises(WorkspaceFileNotFoundError, match="checksum"):
        await files.open_verified("doc.txt")


async def test_the_database_is_the_default_backend_on_postgresql(settings_factory) -> None:
    settings = settings_factory(workspace_url=None)
    expected = "database:" if bp_database.BACKEND == "postgresql" else "file:"
    assert settings.effective_workspace_url == expected


def test_workspace_url_is_checked(settings_factory) -> None:
    for bad in ("ftp://x/y", "s3://", "s3:///prefix", "/srv/files", "database"):
        with pytest.raises(ConfigurationError, match="BLOCKPILOT_WORKSPACE_URL"):
            settings_factory(workspace_url=bad)
    assert settings_factory(workspace_url="s3://bucket/a/b/").workspace_url == "s3://bucket/a/b"


async def test_switching_backend_without_moving_the_files_is_refused(make_pilot) -> None:
    pilot = await make_pilot(workspace_url="file:")
    files = await _files_of(pilot, "alice")
    await files.write("doc.txt", "kept in the folder")
    await pilot.close()
    with pytest.raises(ConfigurationError, match="workspaces migrate --to database:"):
        await make_pilot(workspace_url="database:")
    again = await make_pilot(workspace_url="file:")
    workspace = await again.workspaces.get_or_create_workspace(files.workspace.user_id)
    assert await again.workspaces.for_workspace(workspace).read("doc.txt") == b"kept in the folder"


# --------------------------------------------------------------------------- S3 backend


async def test_an_unreachable_object_store_is_a_typed_error_without_secrets(
    make_pilot, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_RETRIES", "0")
    pilot = await make_pilot(workspace_url=f"s3://{s3_bucket}/w")
    files = await _files_of(pilot, "alice")
    with caplog.at_level(logging.DEBUG), pytest.raises(WorkspaceError) as caught:
        await files.write("a.txt", "data")
    assert "nothing was written" in caught.value.message
    assert S3_SECRET_CANARY not in f"{caught.value} {caught.value.details}"
    assert S3_SECRET_CANARY not in caplog.text
    assert await files.list() == []


# --------------------------------------------------------------------------- several servers


@pytest.mark.parametrize("shared", ["database", "s3"])
async def test_a_file_written_through_one_server_is_read_through_another(
    settings_factory, tmp_path: Path, shared: str, request: pytest.FixtureRequest
) -> None:
    url = f"s3://{request.getfixturevalue('s3_bucket')}/ws" if shared == "s3" else "database:"
    first_settings = settings_factory(workspace_url=url)
    database = first_settings.effective_database_url  # SQLite: the first home's file
    second_settings = Settings.load(
        home=tmp_path / "second-home",
        database_url=database,
        encryption_keys=first_settings.encryption_keys,
        workspace_url=url,
    )
    first = await Pilot.open(first_settings)
    second = await Pilot.open(second_settings)
    try:
        user, _ = await first.users.create("alice")
        one = first.workspaces.for_workspace(
            await first.workspaces.get_or_create_workspace(user.id)
        )
        two = second.workspaces.for_workspace(
            await second.workspaces.get_or_create_workspace(user.id)
        )
        data = os.urandom(3 * MIB + 17)
        record = await one.write_stream("reports/out.bin", _pieces(data))
        info, got = await two.read_by_id(record.id)  # a workspace:// reference
        assert got == data and info.path == "/reports/out.bin"
        await two.write("reports/out.bin", b"replaced on the second server")
        assert await one.read("reports/out.bin") == b"replaced on the second server"
        assert await one.delete("reports/out.bin")
        assert await two.list() == []
        assert not (tmp_path / "second-home" / "workspaces").exists()
    finally:
        await second.close()
        await first.close()


_CHILD = textwrap.dedent(
    """
    import asyncio, os, sys
    from blockpilot.pilot import Pilot

    async def main():
        pilot = await Pilot.open()
        ws = await pilot.workspaces.get_or_create_workspace(sys.argv[1])
        files = pilot.workspaces.for_workspace(ws)

        async def pieces():
            for _ in range(12):
                yield os.urandom(1024 * 1024)
            print("mid-upload", flush=True)
            await asyncio.sleep(3600)
            yield b"never"

        await files.write_stream("victim.bin", pieces())

    asyncio.run(main())
    """
)


@pytest.mark.workspace_backends
async def test_sigkill_mid_upload_leaves_no_visible_file(
    make_pilot, workspace_url: str, workspace_backend: str
) -> None:
    pilot = await make_pilot(workspace_url=workspace_url)
    files = await _files_of(pilot, "alice")
    await files.write("victim.bin", b"the previous version")
    settings = pilot.settings
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("AWS_", "PATH", "HOME", "LANG")) or k == "PYTHONPATH"
    }
    env.update(
        BLOCKPILOT_HOME=str(settings.home),
        BLOCKPILOT_ENCRYPTION_KEYS=",".join(k.get_secret_value() for k in settings.encryption_keys),
        BLOCKPILOT_DATABASE_URL=settings.effective_database_url,
        BLOCKPILOT_WORKSPACE_URL=workspace_url,
    )
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, files.workspace.user_id],
        env=env,
        stdout=subprocess.PIPE,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    try:
        line = await asyncio.to_thread(child.stdout.readline)  # type: ignore[union-attr]
        assert line.strip() == b"mid-upload"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]
    assert [f.path for f in await files.list()] == ["/victim.bin"]
    assert await files.read("victim.bin") == b"the previous version"
    if workspace_backend != "file":
        # The killed writer's upload still holds its blob (chunks, or an unfinished multipart
        # upload) until the hold runs out; then a sweep removes what it wrote.
        assert await live_holds(pilot) == 1
        if workspace_backend == "database":
            assert await stored_blobs(pilot) > 1
            assert await DatabaseBlobStorage(pilot.engine, orphan_max_age_seconds=0).start() == 0
        await expire_holds(pilot)
        await sweep_orphan_blobs(pilot.engine, pilot.workspaces.blobs, min_age_seconds=0)
        assert await live_holds(pilot) == 0
    if workspace_backend == "file":  # the killed writer's temp file, swept once it is old
        assert sweep_temp_files(settings.home / "workspaces", max_age_seconds=0) == 1
    assert await stored_blobs(pilot) == 1


@pytest.mark.workspace_backends
async def test_upload_and_download_over_http(make_pilot, workspace_url: str) -> None:
    import httpx

    from blockpilot.api.app import create_app

    pilot = await make_pilot(workspace_url=workspace_url)
    _, alice_key = await pilot.users.create("alice")
    _, bob_key = await pilot.users.create("bob")
    data = os.urandom(2 * MIB + 5)
    transport = httpx.ASGITransport(app=create_app(pilot))
    async with (
        httpx.AsyncClient(
            transport=transport,
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {alice_key}"},
        ) as as_alice,
        httpx.AsyncClient(
            transport=transport,
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {bob_key}"},
        ) as as_bob,
    ):
        put = await as_alice.put("/api/v1/workspace/files/out/report.bin", content=data)
        assert put.status_code == 201, put.text
        got = await as_alice.get("/api/v1/workspace/files/out/report.bin")
        assert got.status_code == 200 and got.content == data
        assert got.headers["etag"] == f'"{_sha(data)}"'
        assert (await as_bob.get("/api/v1/workspace/files/out/report.bin")).status_code == 404
