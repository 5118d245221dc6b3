"""Workspace paths (docs/security.md): nothing a user names reaches outside the workspace.

Every hostile path goes through the file API, the file blocks, the HTTP routes (raw, so no
client normalises it first) and the CLI; the whole data folder outside the user's blob
directory, and a sentinel directory next to it, must be byte-for-byte unchanged. Symlinks
planted in the blob directory, or swapped in while a write is under way, must never lead a
write (or a read) outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from blockpilot.api import create_app
from blockpilot.cli.app import app as cli_app
from blockpilot.errors import WorkspaceError, WorkspaceFileNotFoundError, WorkspacePathError
from blockpilot.pilot import Pilot
from blockpilot.workspaces.manager import WorkspaceFiles
from blockpilot.workspaces.paths import normalise_path
from tests.security.sec_helpers import (
    CANARIES,
    LIST_FILES_ID,
    READ_FILE_ID,
    WRITE_FILE_ID,
    tool_json,
)

HOSTILE = [
    "../x",
    "../../x",
    "a/../../x",
    "a/b/../../../x",
    "..",
    ".",
    "./..",
    "...",
    "....//x",
    ". .",
    "/..",
    "/../etc/passwd",
    "..\\x",
    "a\\..\\..\\x",
    "C:\\Windows\\win.ini",
    "\\\\server\\share\\x",
    "a\x00b",
    "x\x00/../../y",
    "a\nb",
    "a\rb",
    "a\tb",
    "\x7f",
    "\uff0e\uff0e/x",  # fullwidth dots
    "\uff0e\uff0e\uff0fx",  # fullwidth dots and slash
    "\u2025/x",  # two-dot leader (NFKC "..")
    "\u2024\u2024/x",  # one-dot leaders
    "\ufe52\ufe52/x",  # small full stops
    "a/\u2025/b",
    "\u202egnp.exe",  # right-to-left override
    "a\u200db",  # zero-width joiner
    "a\u200bb",  # zero-width space
    "a\ufeffb",  # byte-order mark
    "a\ud800b",  # lone surrogate
    "x" * 256,
    "a/" + "y" * 256,
    "/".join(["d"] * 600),
    "z" * 1025,
    "",
    "/",
    "   ",
]

# Not refused, but virtual: they name rows of this workspace, never host files.
VIRTUAL = [
    "/etc/passwd",
    "~/x",
    "~root/.ssh/authorized_keys",
    "%2e%2e/x",
    "..%2fx",
    "%2e%2e%2f%2e%2e%2fx",
    "/proc/self/environ",
    "file:///etc/passwd",
]


def _tree(root: Path, skip: Path | None = None) -> dict[str, str]:
    """Path -> content hash (or link target) of everything under *root*, except *skip*."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        if skip is not None and (here == skip or skip in here.parents):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            if name.startswith("blockpilot.db"):
                continue  # the database changes; it holds rows, never user-named files
            path = here / name
            if path.is_symlink():
                out[str(path)] = "link:" + os.readlink(path)
            elif path.is_file():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                out[str(path)] = "dir"
    return out


async def _files(pilot: Pilot, user_id: str) -> WorkspaceFiles:
    return pilot.workspaces.for_workspace(await pilot.workspaces.get_or_create_workspace(user_id))


@pytest.fixture
async def setup(open_pilot: Any, tmp_path: Path) -> Any:
    pilot = await open_pilot()
    user, key = await pilot.users.create("mallory")
    other, _ = await pilot.users.create("victim")
    files = await _files(pilot, user.id)
    victim_files = await _files(pilot, other.id)
    await files.write("/seed.txt", b"seed")
    await victim_files.write("/victim.txt", b"victim data")
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    (sentinel / "target.txt").write_bytes(b"untouched")
    return pilot, user, key, files, victim_files, sentinel


def _blob_dir(pilot: Pilot, files: WorkspaceFiles) -> Path:
    return pilot.settings.home / "workspaces" / files.workspace_id


@pytest.mark.workspace_backends  # on database: and s3:// nothing may reach the disk at all
async def test_hostile_paths_through_the_file_api(setup: Any, tmp_path: Path) -> None:
    pilot, user, _, files, victim_files, sentinel = setup
    own_dir = _blob_dir(pilot, files)
    before = _tree(tmp_path, skip=own_dir)
    own_before = set(os.listdir(own_dir)) if own_dir.exists() else set()
    extra = [
        f"../{files.workspace_id}_evil/x",
        f"../{victim_files.workspace_id}/x",
        f"/../{victim_files.workspace_id}/victim.txt",
        str(sentinel / "target.txt"),
        f"../../../../../../{sentinel / 'target.txt'}",
    ]
    refused = 0
    for path in [*HOSTILE, *extra]:
        for action in ("write", "read", "delete", "list"):
            try:
                if action == "write":
                    await files.write(path, b"pwned")
                elif action == "read":
                    data = await files.read(path)
                    assert data != b"untouched" and data != b"victim data", path
                elif action == "delete":
                    await files.delete(path)
                else:
                    await files.list(path)
            except WorkspaceError as exc:
                CANARIES.saw("workspace error", exc.message)
                refused += 1
    for path in VIRTUAL:
        record = await files.write(path, b"virtual")
        assert record.path == normalise_path(path)
        assert await files.read(path) == b"virtual"
    assert refused >= 4 * len(HOSTILE)
    assert _tree(tmp_path, skip=own_dir) == before, "something outside the workspace changed"
    assert (sentinel / "target.txt").read_bytes() == b"untouched"
    assert await victim_files.read("/victim.txt") == b"victim data"
    # Blobs are named by random ids only: no user text ever becomes a file name.
    for name in (set(os.listdir(own_dir)) if own_dir.exists() else set()) - own_before:
        assert len(name) == 32 and all(c in "0123456789abcdef" for c in name), name


@pytest.mark.slow
async def test_hostile_paths_through_the_blocks_http_and_cli(
    setup: Any, tmp_path: Path, home: Path
) -> None:
    pilot, user, key, files, _, sentinel = setup
    own_dir = _blob_dir(pilot, files)
    before = _tree(tmp_path, skip=own_dir)
    for path in HOSTILE:
        for block_id, data in (
            (WRITE_FILE_ID, {"path": path, "content": "pwned"}),
            (READ_FILE_ID, {"path": path}),
            (LIST_FILES_ID, {"prefix": path}),
        ):
            outcome = tool_json(
                await pilot.call_tool(
                    "run_block", {"block_id": block_id, "input_data": data}, user_id=user.id
                )
            )
            if block_id == LIST_FILES_ID and path.strip() in ("", "/"):
                continue  # the root: lists everything
            assert outcome["type"] in ("error", "input_validation_error"), (path, outcome)
    app = create_app(pilot)
    for path in HOSTILE + [f"/../../{sentinel.name}/target.txt"]:
        if not path.strip() or "\ud800" in path:
            continue
        raw = "/api/v1/workspace/files/" + path
        for method in ("PUT", "GET", "DELETE"):
            status, body = await _raw(app, method, raw, key, b"pwned")
            CANARIES.saw("http", body)
            assert status in (400, 404, 405, 413, 422), (method, path, status, body)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}"},
    ) as client:
        for encoded in (
            "%2e%2e/x",
            "..%2fx",
            "%2e%2e%2f%2e%2e%2fsentinel",
            "a%00b",
            "%E2%80%AEx",
            "%ef%bc%8e%ef%bc%8e/x",
        ):
            response = await client.put(f"/api/v1/workspace/files/{encoded}", content=b"pwned")
            CANARIES.saw("http", response.text)
            assert response.status_code in (200, 201, 400), response.text
            if response.status_code in (200, 201):  # a literal, harmless name
                assert ".." not in response.json()["path"].split("/")
    env = {
        "BLOCKPILOT_HOME": str(home),
        "BLOCKPILOT_ENCRYPTION_KEYS": pilot.settings.encryption_keys[0].get_secret_value(),
    }

    def cli() -> list[int]:
        runner = CliRunner()
        codes = []
        for path in ("../x", "a/../../x", "..\\x", "\uff0e\uff0e/x", "\u202ex", "x" * 256):
            result = runner.invoke(
                cli_app,
                [
                    "run",
                    "WriteWorkspaceFileBlock",
                    "--user",
                    "mallory",
                    "--input",
                    json.dumps({"path": path, "content": "p"}),
                ],
                env=env,
            )
            CANARIES.saw("cli", result.stdout + result.stderr)
            codes.append(result.exit_code)
        return codes

    codes = await asyncio.to_thread(cli)
    assert all(code in (2, 7) for code in codes), codes
    assert _tree(tmp_path, skip=own_dir) == before
    assert (sentinel / "target.txt").read_bytes() == b"untouched"


async def _raw(app: Any, method: str, path: str, key: str, body: bytes) -> tuple[int, str]:
    """Send *path* exactly as given (clients would normalise '..' away)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"]), b"".join(m.get("body", b"") for m in sent[1:]).decode(
        "utf-8", "replace"
    )


# --------------------------------------------------------------------------- symlinks


async def test_a_symlink_planted_as_the_blob_directory_is_never_written_through(
    setup: Any, tmp_path: Path
) -> None:
    pilot, _, _, files, _, sentinel = setup
    blob_dir = _blob_dir(pilot, files)
    outside = tmp_path / "outside"
    outside.mkdir()
    blob_dir.rename(blob_dir.with_name(blob_dir.name + ".real"))
    blob_dir.symlink_to(outside, target_is_directory=True)
    with pytest.raises(WorkspaceError):
        await files.write("/new.txt", b"should not land outside")
    assert list(outside.iterdir()) == []
    with pytest.raises(WorkspaceError):
        await files.read("/seed.txt")  # nor is anything read through it


async def test_a_symlink_swapped_in_mid_write_never_leads_outside(
    setup: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The blob directory is replaced by a symlink at each point of a write in turn (just
    before each ``open`` the write makes); nothing ever lands outside."""
    pilot, _, _, files, _, _ = setup
    blob_dir = _blob_dir(pilot, files)
    outside = tmp_path / "outside"
    outside.mkdir()
    real_open = os.open
    for swap_at in range(4):
        calls = 0

        def hooked(
            path: Any,
            flags: int,
            mode: int = 0o777,
            *,
            dir_fd: int | None = None,
            _at: int = swap_at,
        ) -> int:
            nonlocal calls
            if calls == _at and not blob_dir.is_symlink():
                blob_dir.rename(blob_dir.with_name(f"{blob_dir.name}.moved{_at}"))
                blob_dir.symlink_to(outside, target_is_directory=True)
            calls += 1
            return real_open(path, flags, mode, dir_fd=dir_fd)

        monkeypatch.setattr(os, "open", hooked)
        try:
            await files.write(f"/swap{swap_at}.txt", b"must stay inside")
        except WorkspaceError:
            pass  # refusing is fine; writing outside is not
        finally:
            monkeypatch.setattr(os, "open", real_open)
            if blob_dir.is_symlink():
                blob_dir.unlink()
            blob_dir.mkdir(exist_ok=True)
        assert list(outside.iterdir()) == [], f"swap before open #{swap_at} wrote outside"


@pytest.mark.slow
async def test_a_racing_symlink_flipper_never_gets_a_write_outside(
    setup: Any, tmp_path: Path
) -> None:
    pilot, _, _, files, _, _ = setup
    blob_dir = _blob_dir(pilot, files)
    outside = tmp_path / "outside"
    outside.mkdir()
    stop = threading.Event()
    flips = 0

    started = threading.Event()

    def flipper() -> None:
        nonlocal flips
        while not stop.is_set():
            try:
                if blob_dir.is_symlink():
                    blob_dir.unlink()
                elif blob_dir.exists():
                    blob_dir.rename(blob_dir.with_name(f"{blob_dir.name}.parked{flips}"))
                    blob_dir.symlink_to(outside, target_is_directory=True)
                else:
                    blob_dir.symlink_to(outside, target_is_directory=True)
                flips += 1
                started.set()
            except OSError:
                pass

    thread = threading.Thread(target=flipper, daemon=True)
    thread.start()
    assert started.wait(5)
    try:
        for index in range(150):
            with contextlib.suppress(WorkspaceError, FileNotFoundError, NotADirectoryError):
                await files.write(f"/race{index}.txt", b"x" * 1024)
    finally:
        stop.set()
        thread.join(5)
    assert flips > 0
    assert list(outside.iterdir()) == []


async def test_a_blob_replaced_by_a_symlink_is_not_followed(setup: Any, tmp_path: Path) -> None:
    pilot, user, key, files, _, sentinel = setup
    record = await files.write("/doc.txt", b"original")
    blob_dir = _blob_dir(pilot, files)
    [blob] = [p for p in blob_dir.iterdir() if p.read_bytes() == b"original"]
    blob.unlink()
    blob.symlink_to(sentinel / "target.txt")
    with pytest.raises(WorkspaceFileNotFoundError, match="damaged"):
        await files.read("/doc.txt")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(pilot)),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}"},
    ) as client:
        response = await client.get("/api/v1/workspace/files/doc.txt")
    assert response.status_code == 404, response.text
    assert b"untouched" not in response.content
    # Overwriting replaces the link itself, never the file it points to.
    await files.write("/doc.txt", b"new")
    assert (sentinel / "target.txt").read_bytes() == b"untouched"
    assert record.path == "/doc.txt"


def test_every_hostile_path_is_refused_by_the_normaliser() -> None:
    for path in HOSTILE:
        with pytest.raises(WorkspacePathError):
            normalise_path(path)
