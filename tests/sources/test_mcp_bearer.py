"""A remote MCP server that needs each user's own bearer token, end to end through Python.

The upstream is a local server on the ``mcp`` SDK behind a bearer check that records, for
every JSON-RPC request, whose token carried it. find → ``{}`` → setup requirements → token
added → run → output; two users with two tokens each reach the server as themselves, a user
without a token never reaches it, and a session is opened once per user and chat session.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp.server.mcpserver import Context

from blockpilot.net.policy import exempt_destination
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.sources.base import SourceOptions, source_block_id
from blockpilot.sources.mcp._sessions import IDLE_SECONDS, list_tools, session_pool
from blockpilot.sources.mcp.kind import listing_text
from blockpilot.storage.users import User
from blockpilot.testing import LocalHTTPServer, Response

from .mcp_servers import Seen, bearer_mcp_server

ALICE_TOKEN = "alice-mcp-token-canary-3f9a1c"
BOB_TOKEN = "bob-mcp-token-canary-8e2d47"
OPERATOR_TOKEN = "operator-listing-token-5b7c"
TOKENS = {ALICE_TOKEN: "alice", BOB_TOKEN: "bob", OPERATOR_TOKEN: "operator"}
WHOAMI = source_block_id("notes", "tool:whoami")
ADD = source_block_id("notes", "tool:add")
SNAPSHOT = source_block_id("notes", "tool:snapshot")


@pytest.fixture
def settings(settings_factory: Any) -> Settings:
    return settings_factory(public_url="http://testserver")


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[str, Seen]]:
    async with bearer_mcp_server(TOKENS) as served:
        yield served


@pytest.fixture
async def notes(pilot: Pilot, upstream: tuple[str, Seen]) -> Pilot:
    url, _ = upstream
    result = await pilot.sources.add_mcp(
        "notes", url, auth="bearer", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    )
    assert result.to_dict() == {"name": "notes", "kind": "mcp", "blocks": 4, "skipped": []}
    return pilot


async def run(pilot: Pilot, user: User, block: str, data: dict[str, Any], sid: str) -> Any:
    return await pilot.call_tool(
        "run_block", {"block_id": block, "input_data": data}, user_id=user.id, session_id=sid
    )


async def token_input(pilot: Pilot, user: User) -> dict[str, Any]:
    """The input that runs a tool without arguments: the user's credential, by id."""
    [meta] = [m for m in await pilot.credentials.candidates(user.id) if m.provider == "notes"]
    return {"run": True, "credentials": {"id": meta.id, "provider": "notes", "type": "api_key"}}


async def test_listing_needs_the_operator_header(pilot: Pilot, upstream: tuple[str, Seen]) -> None:
    url, _ = upstream
    from blockpilot.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="401"):
        await pilot.sources.add_mcp("notes", url, auth="bearer")
    assert await pilot.sources.list() == []


async def test_effects_and_schemas(notes: Pilot) -> None:
    shown = await notes.sources.show("notes")
    effects = {op["operation"]: op["effect"] for op in shown["operations"]}
    assert effects == {
        "whoami": "read",
        "add": "write",
        "delete_note": "destructive",
        "snapshot": "read",
    }
    block = notes.catalog.registry.get(ADD)
    assert block is not None
    schema = block.Input.jsonschema()
    assert set(schema["properties"]) == {"a", "b", "credentials"}


async def test_find_setup_token_run_two_users(
    notes: Pilot, upstream: tuple[str, Seen], alice: User, bob: User
) -> None:
    _, seen = upstream
    before = list(seen.calls)
    found = await notes.call_tool("find_block", {"query": "add two integers"}, user_id=alice.id)
    assert ADD in [b.id for b in found.blocks]
    alice_chat = (await notes.session_for(alice.id, None)).session_id
    bob_chat = (await notes.session_for(bob.id, None)).session_id

    details = await run(notes, alice, ADD, {}, alice_chat)
    assert details.type == "setup_requirements"
    [entry] = details.setup_info.user_readiness.missing_credentials.values()
    assert entry["provider"] == "notes" and entry["types"] == ["api_key"]

    # Bob has no token: running never reaches the server.
    refused = await run(notes, bob, ADD, {"a": 1, "b": 2}, bob_chat)
    assert refused.type == "setup_requirements"
    assert seen.calls == before and seen.refused == 0

    await notes.add_credentials(
        alice.id, {"provider": "notes", "type": "api_key", "api_key": ALICE_TOKEN}
    )
    await notes.add_credentials(
        bob.id, {"provider": "notes", "type": "api_key", "api_key": BOB_TOKEN}
    )
    schema = await run(notes, alice, ADD, {}, alice_chat)
    assert schema.type == "block_details", schema
    ran = await run(notes, alice, ADD, {"a": 2, "b": 3}, alice_chat)
    assert ran.type == "block_output", ran
    assert ran.outputs["result"] == [{"result": 5}]
    again = await run(notes, alice, WHOAMI, await token_input(notes, alice), alice_chat)
    assert again.type == "block_output", again
    assert again.outputs["result"] == [{"user": "alice"}]
    # whoami has no inputs: {} shows its schema.
    assert (await run(notes, bob, WHOAMI, {}, bob_chat)).type == "block_details"

    ran_bob = await run(notes, bob, ADD, {"a": 10, "b": 1}, bob_chat)
    bob_who = await run(notes, bob, WHOAMI, await token_input(notes, bob), bob_chat)
    assert bob_who.outputs["result"] == [{"user": "bob"}]
    assert ran_bob.outputs["result"] == [{"result": 11}]
    # Each upstream request carried its own user's token; one initialize per user and chat.
    assert seen.initializes("alice") == 1 and seen.initializes("bob") == 1
    assert [m for who, m in seen.calls if who == "alice"].count("tools/call") == 2
    assert [m for who, m in seen.calls if who == "bob"].count("tools/call") == 2
    assert seen.users() <= {"alice", "bob", "operator"}
    dumped = ran.model_dump_json() + ran_bob.model_dump_json()
    assert ALICE_TOKEN not in dumped and BOB_TOKEN not in dumped


async def test_images_become_workspace_files(notes: Pilot, alice: User) -> None:
    await notes.add_credentials(
        alice.id, {"provider": "notes", "type": "api_key", "api_key": ALICE_TOKEN}
    )
    chat = (await notes.session_for(alice.id, None)).session_id
    ran = await run(notes, alice, SNAPSHOT, await token_input(notes, alice), chat)
    assert ran.type == "block_output", ran
    [uri] = ran.outputs["file"]
    assert uri.startswith("workspace://")


async def test_revoked_token_asks_to_reconnect(
    notes: Pilot, alice: User, upstream: tuple[str, Seen]
) -> None:
    _, seen = upstream
    await notes.add_credentials(
        alice.id, {"provider": "notes", "type": "api_key", "api_key": "revoked-token-canary-77"}
    )
    chat = (await notes.session_for(alice.id, None)).session_id
    ran = await run(notes, alice, ADD, {"a": 1, "b": 1}, chat)
    assert ran.type == "setup_requirements", ran
    assert "reconnect" in ran.message and "401" in ran.message
    [entry] = ran.setup_info.user_readiness.missing_credentials.values()
    assert entry["provider"] == "notes"
    assert "revoked-token-canary-77" not in ran.model_dump_json()
    # The refused credential is not tried again: the next call asks for setup without a call.
    refused = seen.refused
    again = await run(notes, alice, ADD, {"a": 1, "b": 1}, chat)
    assert again.type == "setup_requirements" and seen.refused == refused
    # A new token works at once.
    await notes.add_credentials(
        alice.id, {"provider": "notes", "type": "api_key", "api_key": ALICE_TOKEN}
    )
    ok = await run(notes, alice, ADD, {"a": 1, "b": 1}, chat)
    assert ok.type == "block_output" and ok.outputs["result"] == [{"result": 2}]


async def test_refresh_drops_a_vanished_tool(
    notes: Pilot, alice: User, upstream: tuple[str, Seen]
) -> None:
    url, seen = upstream
    await notes.add_credentials(
        alice.id, {"provider": "notes", "type": "api_key", "api_key": ALICE_TOKEN}
    )
    seen.server.remove_tool("delete_note")
    refreshed = await notes.sources.refresh(
        "notes", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    )
    assert refreshed.to_dict()["blocks"] == 3
    assert notes.catalog.registry.get(ADD) is not None  # ids are stable across refreshes
    gone = source_block_id("notes", "tool:delete_note")
    chat = (await notes.session_for(alice.id, None)).session_id
    ran = await run(notes, alice, gone, {"note_id": "n1"}, chat)
    assert ran.type == "error" and ran.error == "block_not_found"
    assert "notes_delete_note" in ran.message and "no longer offers it" in ran.message


async def test_a_redirect_to_another_host_never_carries_the_token(
    pilot: Pilot, alice: User, upstream: tuple[str, Seen]
) -> None:
    url, seen = upstream
    tools, _ = await list_tools(
        url,
        {"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        http=pilot.http.with_exemptions([exempt_destination(url)]),
    )
    with LocalHTTPServer() as elsewhere, LocalHTTPServer() as redirector:
        # The source's URL answers every request with a redirect to another origin.
        redirector.add_route(
            "POST", "/mcp", Response(307, b"", {"Location": elsewhere.url("/mcp")})
        )
        await pilot.sources.add(
            "mcp",
            "notes",
            listing_text(redirector.url("/mcp"), "bearer", tools),
            SourceOptions(base_url=redirector.url("/mcp")),
        )
        await pilot.add_credentials(
            alice.id, {"provider": "notes", "type": "api_key", "api_key": ALICE_TOKEN}
        )
        chat = (await pilot.session_for(alice.id, None)).session_id
        ran = await run(pilot, alice, ADD, {"a": 1, "b": 2}, chat)
        assert ran.type == "error" and ran.error == "block_failed", ran
        assert elsewhere.requests == [] and redirector.requests
        assert [r.header("authorization") for r in redirector.requests] == [
            f"Bearer {ALICE_TOKEN}"
        ] * len(redirector.requests)
        assert ALICE_TOKEN not in ran.model_dump_json()


async def test_an_idle_session_is_closed_and_reopened(
    notes: Pilot, alice: User, upstream: tuple[str, Seen]
) -> None:
    _, seen = upstream
    pool = session_pool()
    pool.idle_seconds = 0.2  # this event loop's pool: close sessions quickly
    try:
        await idle_close_and_reopen(notes, alice, seen)
    finally:
        pool.idle_seconds = IDLE_SECONDS


async def idle_close_and_reopen(notes: Pilot, alice: User, seen: Seen) -> None:
    pool = session_pool()
    await notes.add_credentials(
        alice.id, {"provider": "notes", "type": "api_key", "api_key": ALICE_TOKEN}
    )
    chat = (await notes.session_for(alice.id, None)).session_id
    assert (await run(notes, alice, ADD, {"a": 1, "b": 1}, chat)).type == "block_output"
    # One session was opened; on a loaded machine it may already be idle-closed by now
    # (0.2 s), so the upstream's count says it, not the pool's.
    assert seen.initializes("alice") == 1
    for _ in range(200):  # wait (bounded) for the idle close; no timing is asserted
        if pool.open_sessions() == 0:
            break
        await asyncio.sleep(0.05)
    assert pool.open_sessions() == 0
    assert (await run(notes, alice, ADD, {"a": 2, "b": 2}, chat)).type == "block_output"
    assert seen.initializes("alice") == 2


async def test_sessions_per_chat_and_list_changed_relists_as_the_user_who_heard_it(
    notes: Pilot, upstream: tuple[str, Seen], alice: User, bob: User
) -> None:
    _, seen = upstream

    async def tidy(ctx: Context, confirm: bool) -> str:
        """Remove the delete_note tool and tell the client."""
        seen.server.remove_tool("delete_note")
        await ctx.session.send_tool_list_changed()
        return "tidied"

    seen.server.add_tool(tidy)
    await notes.sources.refresh("notes", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    for user, token in ((alice, ALICE_TOKEN), (bob, BOB_TOKEN)):
        await notes.add_credentials(
            user.id, {"provider": "notes", "type": "api_key", "api_key": token}
        )
    first, second = await notes.session_for(alice.id, None), await notes.session_for(alice.id, None)
    bob_chat = (await notes.session_for(bob.id, None)).session_id
    for chat in (first.session_id, second.session_id):
        assert (await run(notes, alice, ADD, {"a": 1, "b": 1}, chat)).type == "block_output"
    assert (await run(notes, bob, ADD, {"a": 1, "b": 1}, bob_chat)).type == "block_output"
    # One session per user and chat session: two for alice, one for bob.
    assert seen.initializes("alice") == 2 and seen.initializes("bob") == 1

    lists = [who for who, m in seen.calls if m == "tools/list"]
    tidy_block = source_block_id("notes", "tool:tidy")
    ran = await run(notes, alice, tidy_block, {"confirm": True}, first.session_id)
    assert ran.type == "block_output", ran
    pool = session_pool()
    for _ in range(400):
        if "notes" in pool.changed():
            break
        await asyncio.sleep(0.05)
    gone = source_block_id("notes", "tool:delete_note")
    refused = await run(notes, bob, gone, {"note_id": "n1"}, bob_chat)
    assert refused.type == "error" and refused.error == "block_not_found", refused
    # The tools were listed again with the token of the session that heard the change.
    assert [who for who, m in seen.calls if m == "tools/list"] == [*lists, "alice"]
    assert (await notes.sources.show("notes"))["blocks"] == 4
