"""WorkspaceManager and WorkspaceFiles on the real database, on every blob backend."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from blockpilot.errors import WorkspaceFileNotFoundError, WorkspacePathError, WorkspaceQuotaError
from blockpilot.storage.tables import workspace_files, workspaces
from blockpilot.storage.workspace_blobs import open_blob_storage
from blockpilot.storage.workspaces import WorkspaceStore
from blockpilot.workspaces.manager import WorkspaceManager
from tests.workspace_backends import overwrite_blobs, stored_blobs

pytestmark = pytest.mark.workspace_backends


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _blobs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _blob_storage(pilot):  # another process's view of the same backend
    return open_blob_storage(
        pilot.settings.effective_workspace_url, home=pilot.settings.home, engine=pilot.engine
    )


async def _count(engine, table, **where) -> int:
    query = select(func.count()).select_from(table)
    for name, value in where.items():
        query = query.where(table.c[name] == value)
    async with engine.connect() as conn:
        return int(await conn.scalar(query))


# --------------------------------------------------------------------------- basic file API


async def test_write_read_list_delete(alice_files) -> None:
    record = await alice_files.write("notes/today.md", "# Today\n")
    assert record.path == "/notes/today.md"
    assert record.size_bytes == 8
    assert record.checksum == _sha(b"# Today\n")
    assert record.mime_type == "text/markdown"
    assert record.uri == f"workspace://{record.id}"
    assert await alice_files.read("/notes/today.md") == b"# Today\n"
    assert await alice_files.read("notes//./today.md") == b"# Today\n"
    info, data = await alice_files.read_by_id(record.id)
    assert info.path == "/notes/today.md" and data == b"# Today\n"

    await alice_files.write("notes/b.txt", b"\x00\x01binary")
    await alice_files.write("other.txt", "x")
    assert [f.path for f in await alice_files.list()] == [
        "/notes/b.txt",
        "/notes/today.md",
        "/other.txt",
    ]
    assert [f.path for f in await alice_files.list("notes")] == ["/notes/b.txt", "/notes/today.md"]
    assert [f.path for f in await alice_files.list("/notes/")] == [
        "/notes/b.txt",
        "/notes/today.md",
    ]

    assert await alice_files.delete("notes/today.md") is True
    assert await alice_files.delete("notes/today.md") is False
    with pytest.raises(WorkspaceFileNotFoundError):
        await alice_files.read("notes/today.md")
    assert [f.path for f in await alice_files.list()] == ["/notes/b.txt", "/other.txt"]


async def test_list_prefix_is_a_folder_not_a_pattern(alice_files) -> None:
    for path in ("a_b/1.txt", "axb/2.txt", "a%b/3.txt", "notes2/4.txt", "notes/5.txt", "notes"):
        await alice_files.write(path, "x")
    assert [f.path for f in await alice_files.list("a_b")] == ["/a_b/1.txt"]
    assert [f.path for f in await alice_files.list("a%b")] == ["/a%b/3.txt"]
    assert [f.path for f in await alice_files.list("notes")] == ["/notes", "/notes/5.txt"]


async def test_overwrite_keeps_one_file_and_updates_checksum(pilot, alice_files) -> None:
    first = await alice_files.write("doc.txt", "version one")
    second = await alice_files.write("doc.txt", "version two, longer")
    assert second.id == first.id  # same file, new content
    assert second.checksum == _sha(b"version two, longer") != first.checksum
    assert second.size_bytes == len(b"version two, longer")
    assert await alice_files.read("doc.txt") == b"version two, longer"
    assert len(await alice_files.list()) == 1
    assert await _count(pilot.engine, workspace_files, workspace_id=alice_files.workspace_id) == 1
    # The replaced blob is gone: exactly one blob is stored.
    assert await stored_blobs(pilot, alice_files.workspace_id) == 1


async def test_damaged_blob_is_detected(pilot, alice_files) -> None:
    await alice_files.write("doc.txt", "original")
    assert await overwrite_blobs(pilot, alice_files.workspace_id, b"tampered") == 1
    with pytest.raises(WorkspaceFileNotFoundError, match="checksum"):
        await alice_files.read("doc.txt")


async def test_missing_blob_is_typed_error(pilot, alice_files) -> None:
    await alice_files.write("doc.txt", "original")
    assert await overwrite_blobs(pilot, alice_files.workspace_id, None) == 1
    with pytest.raises(WorkspaceFileNotFoundError, match="missing"):
        await alice_files.read("doc.txt")


async def test_size_limit(make_pilot) -> None:
    pilot = await make_pilot(max_file_bytes=10)
    user, _ = await pilot.users.create("alice")
    files = pilot.workspaces.for_workspace(await pilot.workspaces.get_or_create_workspace(user.id))
    assert (await files.write("ok.txt", "0123456789")).size_bytes == 10
    with pytest.raises(WorkspaceQuotaError) as caught:
        await files.write("big.txt", "01234567890")
    assert caught.value.details == {"size_bytes": 11, "limit_bytes": 10}
    with pytest.raises(WorkspaceQuotaError):
        await files.write("ok.txt", "é" * 6)  # 12 bytes in UTF-8: the limit is in bytes
    assert [f.path for f in await files.list()] == ["/ok.txt"]
    assert await files.read("ok.txt") == b"0123456789"  # the failed overwrite changed nothing
    assert await stored_blobs(pilot) == 1


BAD_PATHS = [
    "../x",
    "a/../../x",
    "a/../b",
    "..",
    "/..",
    "./../x",
    "a/..",
    "...",
    " .. /x",
    "a\\..\\x",
    "..\\x",
    "C:\\Windows\\win.ini",
    "a\x00b",
    "a/b\x00.txt",
    "a\nb",
    "a\u202eb",  # right-to-left override
    "",
    "/",
    "   ",
    "x" * 256,
    "a/" + "b" * 256 + "/c",
    "/".join(["abcdefghi"] * 103),  # 1,029 characters
]


async def test_bad_paths_are_typed_errors(pilot, alice_files) -> None:
    for path in BAD_PATHS:
        with pytest.raises(WorkspacePathError):
            await alice_files.write(path, "data")
        with pytest.raises(WorkspacePathError):
            await alice_files.read(path)
        with pytest.raises(WorkspacePathError):
            await alice_files.delete(path)
    assert await alice_files.list() == []
    assert await stored_blobs(pilot) == 0


async def test_non_string_path_is_typed_error(alice_files) -> None:
    with pytest.raises(WorkspacePathError):
        await alice_files.write(None, "x")  # type: ignore[arg-type]


async def test_absolute_looking_paths_stay_virtual(pilot, alice_files, tmp_path) -> None:
    with pytest.raises(WorkspaceFileNotFoundError):
        await alice_files.read("/etc/passwd")  # never the real file
    real = tmp_path / "real.txt"
    real.write_text("real file")
    with pytest.raises(WorkspaceFileNotFoundError):
        await alice_files.read(str(real))
    await alice_files.write("/etc/passwd", "virtual")
    assert await alice_files.read("/etc/passwd") == b"virtual"
    assert Path("/etc/passwd").read_bytes() != b"virtual"
    await alice_files.write(str(real), "also virtual")
    assert real.read_text() == "real file"


@pytest.mark.workspace_backends("file")
async def test_blobs_live_only_under_the_workspace_dir(pilot, alice_files, bob_files) -> None:
    home = pilot.settings.home
    before = {p for p in home.rglob("*") if p.is_file() and "workspaces" not in p.parts}
    names = [
        "/etc/passwd",
        "../../escape.txt",
        "a/b/c/d.txt",
        "~/.ssh/authorized_keys",
        "con",
        "x.txt",
    ]
    for name in names:
        for files in (alice_files, bob_files):
            with contextlib.suppress(WorkspacePathError):
                await files.write(name, f"{name} data")
    after = {p for p in home.rglob("*") if p.is_file() and "workspaces" not in p.parts}
    assert {p.name for p in after - before} <= {"blockpilot.db-wal", "blockpilot.db-shm"}
    for files in (alice_files, bob_files):
        root = home / "workspaces" / files.workspace_id
        blobs = _blobs(root)
        assert len(blobs) == len(await files.list())
        for blob in blobs:
            assert blob.parent == root
            assert len(blob.name) == 32 and all(c in "0123456789abcdef" for c in blob.name)
            if os.name == "posix":
                assert blob.stat().st_mode & 0o077 == 0
    assert not (home.parent / "escape.txt").exists()
    assert {p.parent for p in _blobs(home / "workspaces")} <= {
        home / "workspaces" / alice_files.workspace_id,
        home / "workspaces" / bob_files.workspace_id,
    }


async def test_users_never_see_each_others_files(alice_files, bob_files) -> None:
    assert alice_files.workspace_id != bob_files.workspace_id
    secret = await alice_files.write("private/diary.txt", "alice only")
    await bob_files.write("private/diary.txt", "bob only")
    assert await alice_files.read("private/diary.txt") == b"alice only"
    assert await bob_files.read("private/diary.txt") == b"bob only"
    with pytest.raises(WorkspaceFileNotFoundError):
        await bob_files.read_by_id(secret.id)
    assert [f.id for f in await bob_files.list()] != [secret.id]
    assert await bob_files.delete("private/diary.txt") is True
    assert await alice_files.read("private/diary.txt") == b"alice only"
    assert [f.path for f in await bob_files.list()] == []


# --------------------------------------------------------------------------- concurrency


async def test_concurrent_first_get_or_create_gives_one_workspace(pilot, alice) -> None:
    results = await asyncio.gather(
        *(pilot.workspaces.get_or_create_workspace(alice.id) for _ in range(20))
    )
    assert len({w.id for w in results}) == 1
    assert await _count(pilot.engine, workspaces, user_id=alice.id) == 1


async def test_concurrent_get_or_create_across_stores_gives_one_workspace(pilot, alice) -> None:
    # Separate stores have separate caches, like separate processes on one database.
    managers = [
        WorkspaceManager(WorkspaceStore(pilot.engine), _blob_storage(pilot), max_file_bytes=100)
        for _ in range(20)
    ]
    results = await asyncio.gather(*(m.get_or_create_workspace(alice.id) for m in managers))
    assert len({w.id for w in results}) == 1
    assert await _count(pilot.engine, workspaces, user_id=alice.id) == 1


async def test_concurrent_writes_to_one_path_leave_one_consistent_file(pilot, alice_files) -> None:
    # Regression: the store gave up after 3 compare-and-swap rounds, so with many writers
    # some writes failed with "workspace file kept changing concurrently".
    contents = [f"writer {i} ".encode() * (i + 1) for i in range(20)]
    results = await asyncio.gather(
        *(alice_files.write("shared.txt", c) for c in contents), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    [record] = await alice_files.list()
    data = await alice_files.read("shared.txt")
    assert data in contents
    assert record.checksum == _sha(data) and record.size_bytes == len(data)
    assert len({r.id for r in results}) == 1
    assert await stored_blobs(pilot, alice_files.workspace_id) == 1
    assert await _count(pilot.engine, workspace_files, workspace_id=alice_files.workspace_id) == 1


async def test_concurrent_writes_across_stores_leave_one_consistent_file(pilot, alice) -> None:
    workspace = await pilot.workspaces.get_or_create_workspace(alice.id)
    writers = [
        WorkspaceManager(
            WorkspaceStore(pilot.engine), _blob_storage(pilot), max_file_bytes=10_000
        ).for_workspace(workspace)
        for _ in range(10)
    ]
    contents = [f"content {i}".encode() for i in range(10)]
    results = await asyncio.gather(
        *(w.write("same.txt", c) for w, c in zip(writers, contents, strict=True))
    )
    assert len({r.id for r in results}) == 1
    data = await writers[0].read("same.txt")
    assert data in contents
    assert await stored_blobs(pilot, workspace.id) == 1


async def test_reads_during_overwrites_never_fail(alice_files) -> None:
    # Regression: a read that looked the row up just before an overwrite deleted the old
    # blob failed with a raw FileNotFoundError.
    contents = [f"version {i}".encode() * 50 for i in range(40)]
    await alice_files.write("hot.txt", contents[0])

    async def writer() -> None:
        for c in contents[1:]:
            await alice_files.write("hot.txt", c)

    async def reader() -> list[bytes]:
        seen = []
        for _ in range(40):
            seen.append(await alice_files.read("hot.txt"))
            await asyncio.sleep(0)
        return seen

    results = await asyncio.gather(writer(), *(reader() for _ in range(10)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    for seen in results[1:]:
        assert all(data in contents for data in seen)
