"""The workspace file blocks through run_block."""

from __future__ import annotations

import hashlib

import pytest

from blockpilot.blocks.library.workspace_files import (
    ListWorkspaceFilesBlock,
    ReadWorkspaceFileBlock,
    WriteWorkspaceFileBlock,
)

WRITE = WriteWorkspaceFileBlock.id
READ = ReadWorkspaceFileBlock.id
LIST = ListWorkspaceFilesBlock.id

pytestmark = pytest.mark.workspace_backends


async def run(pilot, user, block_id: str, input_data: dict) -> dict:
    response = await pilot.call_tool(
        "run_block", {"block_id": block_id, "input_data": input_data}, user_id=user.id
    )
    return response.model_dump(mode="json")


async def test_write_read_list_through_blocks(pilot, alice) -> None:
    r = await run(pilot, alice, WRITE, {"path": "notes/today.md", "content": "# hello"})
    assert r["type"] == "block_output", r
    [uri] = r["outputs"]["file"]
    assert uri.startswith("workspace://") and r["outputs"]["path"] == ["/notes/today.md"]

    r = await run(pilot, alice, READ, {"path": "/notes/today.md"})
    assert r["outputs"] == {"content": ["# hello"]}

    await run(pilot, alice, WRITE, {"path": "notes/today.md", "content": "# changed"})
    r = await run(pilot, alice, LIST, {"prefix": "notes"})
    [listed] = r["outputs"]["files"][0]
    assert listed["path"] == "/notes/today.md"
    assert listed["uri"] == uri  # overwriting keeps the file's identity
    assert listed["checksum"] == hashlib.sha256(b"# changed").hexdigest()
    assert listed["size_bytes"] == len("# changed")

    r = await run(pilot, alice, LIST, {"prefix": "/"})
    assert [f["path"] for f in r["outputs"]["files"][0]] == ["/notes/today.md"]


async def test_read_missing_file_is_block_failed(pilot, alice) -> None:
    r = await run(pilot, alice, READ, {"path": "/etc/passwd"})
    assert r["type"] == "error" and r["code"] == "block_failed", r
    assert r["details"] == {"cause": "file_not_found"}
    assert "root:" not in r["message"]


async def test_bad_paths_fail_with_typed_cause(pilot, alice) -> None:
    for path in ["../x", "a/../../etc/passwd", "a\\b", "a\u0000b", "x" * 300]:
        for block_id, data in ((WRITE, {"path": path, "content": "x"}), (READ, {"path": path})):
            r = await run(pilot, alice, block_id, data)
            assert r["type"] == "error" and r["code"] == "block_failed", (path, r)
            assert r["details"] == {"cause": "invalid_path"}
    r = await run(pilot, alice, LIST, {"prefix": "/"})
    assert r["outputs"]["files"] == [[]]


async def test_over_long_path_is_input_validation_error(pilot, alice) -> None:
    r = await run(pilot, alice, WRITE, {"path": "a/" * 600, "content": "x"})
    assert r["type"] == "input_validation_error", r
    assert "path" in r["errors"]


async def test_size_limit_through_block(make_pilot) -> None:
    pilot = await make_pilot(max_file_bytes=16)
    alice, _ = await pilot.users.create("alice")
    r = await run(pilot, alice, WRITE, {"path": "big.txt", "content": "x" * 17})
    assert r["type"] == "error" and r["code"] == "block_failed", r
    assert r["details"] == {"cause": "file_too_large"}
    assert "16" in r["message"]
    r = await run(pilot, alice, LIST, {"prefix": "/"})
    assert r["outputs"]["files"] == [[]]


async def test_users_are_isolated_through_blocks(pilot, alice, bob) -> None:
    await run(pilot, alice, WRITE, {"path": "secret.txt", "content": "alice's secret"})
    r = await run(pilot, bob, READ, {"path": "secret.txt"})
    assert r["type"] == "error" and r["details"] == {"cause": "file_not_found"}, r
    r = await run(pilot, bob, LIST, {"prefix": "/"})
    assert r["outputs"]["files"] == [[]]


async def test_one_workspace_per_user_across_runs(pilot, alice) -> None:
    import asyncio

    from sqlalchemy import func, select

    from blockpilot.storage.tables import workspaces

    results = await asyncio.gather(
        *(run(pilot, alice, WRITE, {"path": f"f{i}.txt", "content": str(i)}) for i in range(10))
    )
    assert all(r["type"] == "block_output" for r in results), results
    async with pilot.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(workspaces)) == 1
    r = await run(pilot, alice, LIST, {"prefix": "/"})
    assert len(r["outputs"]["files"][0]) == 10
