"""A full disk (docs/security.md): workspace writes fail with a typed error, leave no
partial file, and a run whose cut output cannot be saved still ends with a final record."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from blockpilot.api import create_app
from blockpilot.errors import WorkspaceError
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings

STORE_VALUE_ID = "1ff065e9-88e8-4358-9d82-8dc91f622ba9"
WRITE_FILE_ID = "5a0a5a52-6f3c-4c55-8c39-1f0f5d0b7d21"


@pytest.fixture
def pilot_settings(settings_factory: Any) -> Settings:
    return settings_factory(max_output_chars=1000)


@pytest.fixture
def disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)


def _leftovers(pilot: Pilot, workspace_id: str) -> list[str]:
    directory = pilot.settings.home / "workspaces" / workspace_id
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


async def test_a_full_disk_is_a_typed_error_with_no_partial_file(
    pilot: Pilot, disk_full: None
) -> None:
    user, key = await pilot.users.create("alice")
    workspace = await pilot.workspaces.get_or_create_workspace(user.id)
    files = pilot.workspaces.for_workspace(workspace)
    with pytest.raises(WorkspaceError, match="No space left on device"):
        await files.write("/a.txt", b"data")

    async def chunks() -> AsyncIterator[bytes]:
        yield b"x" * 1000

    with pytest.raises(WorkspaceError, match="No space left on device"):
        await files.write_stream("/b.txt", chunks())
    outcome = json.loads(
        (
            await pilot.call_tool(
                "run_block",
                {"block_id": WRITE_FILE_ID, "input_data": {"path": "/c.txt", "content": "x"}},
                user_id=user.id,
            )
        ).to_json()
    )
    assert outcome["type"] == "error" and "No space left" in outcome["message"], outcome
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(pilot)),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}"},
    ) as client:
        put = await client.put("/api/v1/workspace/files/d.txt", content=b"x" * 5000)
    assert put.status_code == 400 and put.json()["error"]["code"] == "workspace_error", put.text
    assert await files.list() == []
    assert _leftovers(pilot, workspace.id) == []  # no temp file, no orphan blob


async def test_a_cut_output_that_cannot_be_saved_still_finishes_the_run(
    pilot: Pilot, disk_full: None
) -> None:
    user, _ = await pilot.users.create("alice")
    outcome = json.loads(
        (
            await pilot.call_tool(
                "run_block",
                {"block_id": STORE_VALUE_ID, "input_data": {"input": "y" * 50_000}},
                user_id=user.id,
            )
        ).to_json()
    )
    assert outcome["type"] == "block_output" and outcome["output_truncated"] is True, outcome
    [record] = await pilot.executions.list(user.id)
    assert record.status == "completed"
    assert Path(pilot.settings.home).exists()


async def test_an_unexpected_error_while_capping_outputs_still_finishes_the_run(
    pilot: Pilot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from blockpilot.workspaces.manager import WorkspaceFiles

    async def broken_write(self: WorkspaceFiles, path: str, content: Any, **kwargs: Any) -> Any:
        raise RuntimeError("storage backend exploded")

    monkeypatch.setattr(WorkspaceFiles, "write", broken_write)
    user, _ = await pilot.users.create("alice")
    response = await pilot.call_tool(
        "run_block",
        {"block_id": STORE_VALUE_ID, "input_data": {"input": "y" * 50_000}},
        user_id=user.id,
    )
    outcome = json.loads(response.to_json())
    assert outcome["type"] == "error" and outcome["code"] == "internal_error", outcome
    (record,) = await pilot.executions.list(user.id)
    assert record.status == "failed" and record.error_code == "internal_error"
