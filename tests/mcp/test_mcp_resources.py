"""Workspace files as MCP resources over real MCP sessions (both protocol eras): each user
lists and reads only their own files; another user's URI is "not found"."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from mcp import Client, MCPError
from mcp_types import INVALID_PARAMS

from blockpilot.mcp import build_mcp_server
from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from blockpilot.workspaces.models import WorkspaceFile

MODES = ["legacy", "auto"]
CANARY = "canary-secret-7f3a9c1e5b"

pytestmark = pytest.mark.workspace_backends


async def write(pilot: Pilot, user: User, path: str, content: bytes | str) -> WorkspaceFile:
    workspace = await pilot.workspaces.get_or_create_workspace(user.id)
    return await pilot.workspaces.for_workspace(workspace).write(path, content)


@pytest.mark.parametrize("mode", MODES)
async def test_a_user_lists_and_reads_their_own_files(
    pilot: Pilot, alice: User, bob: User, mode: str
) -> None:
    notes = await write(pilot, alice, "/notes/todo.txt", f"buy milk {CANARY}")
    image = await write(pilot, alice, "/pixel.png", b"\x89PNG\r\n\x1a\n\x00\xff")
    bobs = await write(pilot, bob, "/bob.txt", "bob's file")

    async with Client(build_mcp_server(pilot, alice.id), mode=mode) as client:
        listed = (await client.list_resources()).resources
        text = (await client.read_resource(notes.uri)).contents
        binary = (await client.read_resource(image.uri)).contents

    assert {(r.uri, r.name, r.mime_type, r.size) for r in listed} == {
        (notes.uri, "/notes/todo.txt", "text/plain", notes.size_bytes),
        (image.uri, "/pixel.png", "image/png", image.size_bytes),
    }
    assert bobs.uri not in {r.uri for r in listed}
    assert [c.text for c in text] == [f"buy milk {CANARY}"]  # type: ignore[union-attr]
    assert [base64.b64decode(c.blob) for c in binary] == [  # type: ignore[union-attr]
        b"\x89PNG\r\n\x1a\n\x00\xff"
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_another_users_file_is_not_found_and_never_listed(
    pilot: Pilot, alice: User, bob: User, mode: str
) -> None:
    secret = await write(pilot, alice, "/secret.txt", CANARY)
    async with Client(build_mcp_server(pilot, bob.id), mode=mode) as client:
        listed = (await client.list_resources()).resources
        errors: list[MCPError] = []
        for uri in (secret.uri, "workspace://", "file:///etc/passwd", "workspace://../x"):
            with pytest.raises(MCPError) as caught:
                await client.read_resource(uri)
            errors.append(caught.value)
    assert listed == []
    assert all(e.error.code == INVALID_PARAMS for e in errors)
    assert all(CANARY not in str(e.error.model_dump()) for e in errors)
    assert "Resource not found" in errors[0].error.message


@pytest.mark.parametrize("mode", MODES)
async def test_without_a_user_nothing_is_listed_or_read(
    pilot: Pilot, alice: User, mode: str
) -> None:
    secret = await write(pilot, alice, "/secret.txt", CANARY)

    def nobody(ctx: Any) -> None:
        return None

    async with Client(build_mcp_server(pilot, nobody), mode=mode) as client:
        assert (await client.list_resources()).resources == []
        with pytest.raises(MCPError):
            await client.read_resource(secret.uri)


@pytest.mark.workspace_backends("file")  # listing reads rows only; the blobs do not matter
async def test_a_long_listing_comes_in_pages(pilot: Pilot, alice: User) -> None:
    from blockpilot.mcp.resources import PAGE_SIZE

    for i in range(PAGE_SIZE + 3):
        await write(pilot, alice, f"/many/{i:04d}.txt", str(i))
    async with Client(build_mcp_server(pilot, alice.id)) as client:
        first = await client.list_resources()
        assert first.next_cursor is not None
        second = await client.list_resources(cursor=first.next_cursor)
        with pytest.raises(MCPError):
            await client.list_resources(cursor="not-a-cursor")
    uris = [r.uri for r in first.resources + second.resources]
    assert len(first.resources) == PAGE_SIZE and second.next_cursor is None
    assert len(uris) == len(set(uris)) == PAGE_SIZE + 3
