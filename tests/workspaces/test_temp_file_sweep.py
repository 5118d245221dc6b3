"""Temp blobs orphaned by a writer killed mid-write are swept when the workspaces open.

Regression: a SIGKILL between creating ``.<blob>.tmp`` and renaming it left the temp file in
the workspace's blob directory for ever (no cleanup code runs on SIGKILL).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path

import pytest

from blockpilot.storage.workspaces import WorkspaceStore
from blockpilot.workspaces.manager import (
    TEMP_FILE_MAX_AGE_SECONDS,
    WorkspaceManager,
    sweep_temp_files,
)

TWO_HOURS_AGO = time.time() - 2 * 3600


def _temp(directory: Path, *, age_from: float | None = None) -> Path:
    path = directory / f".{secrets.token_hex(16)}.tmp"
    path.write_bytes(b"half a file")
    if age_from is not None:
        os.utime(path, (age_from, age_from))
    return path


def _aged(path: Path, content: bytes | None = b"x") -> Path:
    """Write *content* to *path* (unless None) and date it two hours back."""
    if content is not None:
        path.write_bytes(content)
    os.utime(path, (TWO_HOURS_AGO, TWO_HOURS_AGO), follow_symlinks=False)
    return path


async def test_old_temp_files_are_swept_when_the_pilot_opens(
    make_pilot, caplog: pytest.LogCaptureFixture
) -> None:
    pilot = await make_pilot()
    alice, _ = await pilot.users.create("alice")
    workspace = await pilot.workspaces.get_or_create_workspace(alice.id)
    files = pilot.workspaces.for_workspace(workspace)
    await files.write("notes/kept.md", b"a real file")
    root = pilot.settings.home / "workspaces"
    directory = root / workspace.id
    [blob] = [p for p in directory.iterdir() if not p.name.startswith(".")]
    _aged(blob, None)  # an old real blob is never a candidate
    settings = pilot.settings
    await pilot.close()

    old = _temp(directory, age_from=TWO_HOURS_AGO)
    fresh = _temp(directory)  # a writer in another process may still be writing it
    other_ws = root / "another-workspace"
    other_ws.mkdir()
    old_elsewhere = _temp(other_ws, age_from=TWO_HOURS_AGO)

    from blockpilot.pilot import Pilot

    with caplog.at_level(logging.INFO, logger="blockpilot.workspaces"):
        reopened = await Pilot.open(settings)
    try:
        assert not old.exists() and not old_elsewhere.exists()
        assert fresh.exists()
        assert blob.exists()
        assert await reopened.workspaces.for_workspace(workspace).read("notes/kept.md") == (
            b"a real file"
        )
        [record] = [
            r for r in caplog.records if r.getMessage() == "removed orphan workspace temp files"
        ]
        assert record.levelno == logging.INFO
        assert record.__dict__["count"] == 2
    finally:
        await reopened.close()


def test_only_the_writers_temp_names_are_swept(tmp_path: Path) -> None:
    root = tmp_path / "workspaces"
    directory = root / "ws"
    directory.mkdir(parents=True)
    old_temp = _temp(directory, age_from=TWO_HOURS_AGO)
    lookalikes = [
        _aged(directory / secrets.token_hex(16)),  # a blob
        _aged(directory / f".{secrets.token_hex(16)}.tmp.bak"),
        _aged(directory / f".{secrets.token_hex(8)}.tmp"),
        _aged(directory / f".{secrets.token_hex(16).upper()}.tmp"),
        _aged(directory / "notes.tmp"),
    ]
    # A symlink with a temp name is not a temp file of ours: neither it nor its target goes.
    target = _aged(tmp_path / "precious", b"keep me")
    link = directory / f".{secrets.token_hex(16)}.tmp"
    link.symlink_to(target)
    os.utime(link, (TWO_HOURS_AGO, TWO_HOURS_AGO), follow_symlinks=False)
    # Temp names directly under the root, or deeper than a workspace directory, are not swept.
    top = _temp(root, age_from=TWO_HOURS_AGO)
    (directory / "sub").mkdir()
    deep = _temp(directory / "sub", age_from=TWO_HOURS_AGO)

    assert sweep_temp_files(root) == 1
    assert not old_temp.exists()
    assert all(p.exists() for p in lookalikes)
    assert link.is_symlink() and target.read_bytes() == b"keep me"
    assert top.exists() and deep.exists()


def test_the_safe_age_is_an_hour_and_configurable(tmp_path: Path) -> None:
    assert TEMP_FILE_MAX_AGE_SECONDS == 3600
    directory = tmp_path / "ws"
    directory.mkdir()
    half_hour = _temp(directory, age_from=time.time() - 1800)
    assert sweep_temp_files(tmp_path) == 0 and half_hour.exists()
    assert sweep_temp_files(tmp_path, max_age_seconds=600) == 1 and not half_hour.exists()


def test_a_missing_root_or_a_symlinked_workspace_dir_is_not_an_error(tmp_path: Path) -> None:
    assert sweep_temp_files(tmp_path / "nowhere") == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = _temp(outside, age_from=TWO_HOURS_AGO)
    root = tmp_path / "workspaces"
    root.mkdir()
    (root / "ws").symlink_to(outside, target_is_directory=True)
    assert sweep_temp_files(root) == 0
    assert victim.exists()


async def test_a_manager_opening_sweeps_and_counts(pilot, tmp_path: Path) -> None:
    root = tmp_path / "workspaces"
    (root / "ws").mkdir(parents=True)
    _temp(root / "ws", age_from=TWO_HOURS_AGO)
    fresh = _temp(root / "ws")
    manager = WorkspaceManager(WorkspaceStore(pilot.engine), root, max_file_bytes=100)
    assert manager.swept_temp_files == 1
    assert [p.name for p in (root / "ws").iterdir()] == [fresh.name]
