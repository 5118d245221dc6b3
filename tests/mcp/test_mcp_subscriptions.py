"""Resource subscriptions over real MCP sessions (2025 protocol): a subscribed client hears
of its own files changing however they changed (a block run, the workspace API, another
process), and never of another user's file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import (
    INVALID_PARAMS,
    ResourceListChangedNotification,
    ResourceUpdatedNotification,
)

from blockpilot.api import create_app
from blockpilot.mcp import build_mcp_server
from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from blockpilot.testing import serve_asgi
from blockpilot.workspaces.models import WorkspaceFile

# The SDK's client warns that the 2026 protocol replaced these requests; we test the 2025 ones.
pytestmark = pytest.mark.filterwarnings("ignore:resources/(un)?subscribe is removed")

CANARY = "canary-subscription-4b7e1d"
WRITE_FILE_BLOCK_ID = "5a0a5a52-6f3c-4c55-8c39-1f0f5d0b7d21"
WAIT_SECONDS = 30  # an upper bound for a notification to arrive, not a speed claim


class Inbox:
    """The resource notifications one client received, as ``("updated", uri)`` and
    ``("list_changed", None)``; every other message is ignored."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.raw: list[str] = []

    async def __call__(self, message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            self.seen.append(("updated", str(message.params.uri)))
        elif isinstance(message, ResourceListChangedNotification):
            self.seen.append(("list_changed", None))
        else:
            return
        self.raw.append(message.model_dump_json())

    async def wait_for(self, entry: tuple[str, str | None]) -> None:
        with anyio.fail_after(WAIT_SECONDS):
            while entry not in self.seen:
                await anyio.sleep(0.02)


async def write(pilot: Pilot, user: User, path: str, content: str) -> WorkspaceFile:
    workspace = await pilot.workspaces.get_or_create_workspace(user.id)
    return await pilot.workspaces.for_workspace(workspace).write(path, content)


async def delete(pilot: Pilot, user: User, path: str) -> None:
    workspace = await pilot.workspaces.get_or_create_workspace(user.id)
    assert await pilot.workspaces.for_workspace(workspace).delete(path)


def legacy_client(pilot: Pilot, user: User, inbox: Inbox, **options: Any) -> Client:
    server = build_mcp_server(pilot, user.id, **options)
    return Client(server, mode="legacy", message_handler=inbox)


async def test_capabilities_say_subscribe_and_list_changed(pilot: Pilot, alice: User) -> None:
    async with legacy_client(pilot, alice, Inbox()) as client:
        resources = client.server_capabilities.resources
    assert resources is not None and resources.subscribe and resources.list_changed


async def test_2026_protocol_does_not_claim_subscriptions(pilot: Pilot, alice: User) -> None:
    """The 2026 protocol delivers changes only on subscriptions/listen, which is not served:
    the capability says so rather than promising notifications that never come."""
    async with Client(build_mcp_server(pilot, alice.id), mode="auto") as client:
        resources = client.server_capabilities.resources
    assert resources is not None and not resources.subscribe and not resources.list_changed


async def test_a_rewrite_is_announced_to_the_subscriber_only(
    pilot: Pilot, alice: User, bob: User
) -> None:
    notes = await write(pilot, alice, "/notes.txt", "v1")
    bobs = await write(pilot, bob, "/bob.txt", "bob's")
    alice_inbox, bob_inbox = Inbox(), Inbox()
    async with (
        legacy_client(pilot, alice, alice_inbox) as alice_client,
        legacy_client(pilot, bob, bob_inbox) as bob_client,
    ):
        await alice_client.subscribe_resource(notes.uri)
        await bob_client.subscribe_resource(bobs.uri)
        await bob_client.list_resources()  # bob hears of his own list changes only
        # Another user's file cannot be subscribed to: "not found", as for a read.
        with pytest.raises(MCPError) as refused:
            await bob_client.subscribe_resource(notes.uri)

        rewritten = await write(pilot, alice, "/notes.txt", f"v2 {CANARY}")
        await write(pilot, alice, "/new.txt", CANARY)  # a new file of alice's
        await alice_inbox.wait_for(("updated", notes.uri))
        # bob's own change, after alice's: once he hears of it, alice's were processed.
        await write(pilot, bob, "/bob.txt", "bob's v2")
        await bob_inbox.wait_for(("updated", bobs.uri))

    assert rewritten.id == notes.id  # a rewrite keeps the file's id (and URI)
    assert refused.value.error.code == INVALID_PARAMS
    assert "Resource not found" in refused.value.error.message
    assert bob_inbox.seen == [("updated", bobs.uri)]
    assert all(alice_file not in "".join(bob_inbox.raw) for alice_file in (notes.id, CANARY))
    assert CANARY not in "".join(alice_inbox.raw)  # a notification names the file, no content


async def test_unsubscribed_files_are_no_longer_announced(pilot: Pilot, alice: User) -> None:
    first = await write(pilot, alice, "/first.txt", "1")
    second = await write(pilot, alice, "/second.txt", "2")
    inbox = Inbox()
    async with legacy_client(pilot, alice, inbox) as client:
        await client.subscribe_resource(first.uri)
        await client.subscribe_resource(second.uri)
        await client.unsubscribe_resource(first.uri)
        await client.unsubscribe_resource(first.uri)  # idempotent
        await client.unsubscribe_resource("workspace://never-subscribed")
        await write(pilot, alice, "/first.txt", "1b")
        await write(pilot, alice, "/second.txt", "2b")
        await inbox.wait_for(("updated", second.uri))
    assert ("updated", first.uri) not in inbox.seen


async def test_list_changes_and_deletes_are_announced(pilot: Pilot, alice: User) -> None:
    doomed = await write(pilot, alice, "/doomed.txt", "bye")
    inbox = Inbox()
    async with legacy_client(pilot, alice, inbox) as client:
        await client.subscribe_resource(doomed.uri)
        await client.list_resources()
        await write(pilot, alice, "/fresh.txt", "hello")
        await inbox.wait_for(("list_changed", None))
        inbox.seen.clear()
        await delete(pilot, alice, "/doomed.txt")
        await inbox.wait_for(("updated", doomed.uri))
        await inbox.wait_for(("list_changed", None))
        with pytest.raises(MCPError):
            await client.read_resource(doomed.uri)


async def test_a_file_written_by_a_block_run_is_announced(pilot: Pilot, alice: User) -> None:
    """The subscriber is one connection; the run is made over another (another session of
    the same user, as a second chat would)."""
    report = await write(pilot, alice, "/report.md", "draft")
    inbox = Inbox()
    async with (
        legacy_client(pilot, alice, inbox) as watcher,
        Client(build_mcp_server(pilot, alice.id)) as runner,
    ):
        await watcher.subscribe_resource(report.uri)
        result = await runner.call_tool(
            "run_block",
            {
                "block_id": WRITE_FILE_BLOCK_ID,
                "input_data": {"path": "/report.md", "content": "final"},
            },
        )
        assert not result.is_error, result
        await inbox.wait_for(("updated", report.uri))
        read = await watcher.read_resource(report.uri)
    assert [c.text for c in read.contents] == ["final"]  # type: ignore[union-attr]


async def test_a_change_made_by_another_process_is_found_by_polling(
    pilot: Pilot, alice: User, bob: User
) -> None:
    """A second Pilot on the same database stands for another process (``serve
    --workers``): its writes reach this server only through the database."""
    notes = await write(pilot, alice, "/notes.txt", "v1")
    bobs = await write(pilot, bob, "/bob.txt", "b1")
    other = await Pilot.open(pilot.settings)
    alice_inbox, bob_inbox = Inbox(), Inbox()
    poll: Callable[..., Client] = legacy_client
    try:
        async with (
            poll(pilot, alice, alice_inbox, resource_poll_interval=0.2) as alice_client,
            poll(pilot, bob, bob_inbox, resource_poll_interval=0.2) as bob_client,
        ):
            await alice_client.subscribe_resource(notes.uri)
            await bob_client.subscribe_resource(bobs.uri)
            await write(other, alice, "/notes.txt", f"v2 {CANARY}")
            await alice_inbox.wait_for(("updated", notes.uri))
            await write(other, bob, "/bob.txt", "b2")
            await bob_inbox.wait_for(("updated", bobs.uri))
    finally:
        await other.close()
    assert alice_inbox.seen.count(("updated", notes.uri)) == 1  # once per change
    assert bob_inbox.seen == [("updated", bobs.uri)]


@asynccontextmanager
async def http_client(url: str, key: str, inbox: Inbox) -> AsyncIterator[Client]:
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}) as http,
        Client(
            streamable_http_client(url, http_client=http), mode="legacy", message_handler=inbox
        ) as client,
    ):
        yield client


async def test_over_http_a_file_put_through_the_api_is_announced_to_its_owner_only(
    pilot: Pilot,
) -> None:
    """The whole service on a real socket: two users' MCP sessions at /mcp (notifications
    come on each session's GET stream); alice's file is replaced through the HTTP API."""
    alice, alice_key = await pilot.users.create("alice")
    bob, bob_key = await pilot.users.create("bob")
    notes = await write(pilot, alice, "/notes.txt", "v1")
    bobs = await write(pilot, bob, "/bob.txt", "b1")
    alice_inbox, bob_inbox = Inbox(), Inbox()
    async with (
        serve_asgi(create_app(pilot), timeout=WAIT_SECONDS) as base,
        http_client(f"{base}/mcp", alice_key, alice_inbox) as alice_client,
        http_client(f"{base}/mcp", bob_key, bob_inbox) as bob_client,
        httpx.AsyncClient(base_url=base, timeout=WAIT_SECONDS) as api,
    ):
        await alice_client.subscribe_resource(notes.uri)
        await bob_client.subscribe_resource(bobs.uri)
        await bob_client.list_resources()
        with pytest.raises(MCPError):
            await bob_client.subscribe_resource(notes.uri)
        put = await api.put(
            "/api/v1/workspace/files/notes.txt",
            content=f"v2 {CANARY}",
            headers={"Authorization": f"Bearer {alice_key}"},
        )
        assert put.status_code == 200, put.text
        await alice_inbox.wait_for(("updated", notes.uri))
        put = await api.put(
            "/api/v1/workspace/files/bob.txt",
            content="b2",
            headers={"Authorization": f"Bearer {bob_key}"},
        )
        assert put.status_code == 200, put.text
        await bob_inbox.wait_for(("updated", bobs.uri))
    assert bob_inbox.seen == [("updated", bobs.uri)]
    assert notes.id not in "".join(bob_inbox.raw) and CANARY not in "".join(bob_inbox.raw)
