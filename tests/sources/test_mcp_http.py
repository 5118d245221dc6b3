"""An MCP source through the HTTP API: an admin adds it, each user connects their own token on
the setup page, and each upstream call carries the right user's token (seen at the upstream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from blockpilot.settings import Settings
from blockpilot.sources.base import source_block_id

from .mcp_servers import Seen, bearer_mcp_server
from .test_sources_e2e import enter_key_on_setup_page, tool

CHATS: dict[int, str] = {}


async def in_chat(client: httpx.AsyncClient, name: str, arguments: dict[str, Any]) -> Any:
    """Call tool *name* in the client's one chat session (X-Session-Id kept between calls)."""
    headers = {"X-Session-Id": CHATS[id(client)]} if id(client) in CHATS else {}
    response = await client.post(f"/api/v1/tools/{name}", json=arguments, headers=headers)
    assert response.status_code == 200, response.text
    CHATS[id(client)] = response.headers["X-Session-Id"]
    return response.json()


ALICE_TOKEN = "alice-http-mcp-canary-0c4e"
BOB_TOKEN = "bob-http-mcp-canary-6d1a"
OPERATOR_TOKEN = "operator-http-listing-2f8b"
TOKENS = {ALICE_TOKEN: "alice", BOB_TOKEN: "bob", OPERATOR_TOKEN: "operator"}
ADD = source_block_id("notes", "tool:add")


@pytest.fixture
def settings(settings_factory: Any) -> Settings:
    return settings_factory(public_url="http://testserver", admin_users=("alice",))


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[str, Seen]]:
    async with bearer_mcp_server(TOKENS) as served:
        yield served


async def test_add_connect_run_two_users(
    clients: dict[str, Any], upstream: tuple[str, Seen]
) -> None:
    url, seen = upstream
    alice, bob, anon = clients["alice"], clients["bob"], clients["anon"]
    body = {"kind": "mcp", "name": "notes", "url": url, "auth": "bearer"}
    refused = await alice.post("/api/v1/sources", json=body)
    assert refused.status_code == 422, refused.text
    assert "401" in refused.json()["error"]["message"]
    body["headers"] = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    not_admin = await bob.post("/api/v1/sources", json=body)
    assert not_admin.status_code == 403
    added = await alice.post("/api/v1/sources", json={**body, "include_tools": ["add", "nope"]})
    assert added.status_code == 201, added.text
    assert added.json() == {
        "name": "notes",
        "kind": "mcp",
        "blocks": 1,
        "skipped": [{"operation": "nope", "reason": "the server lists no such tool"}],
    }
    assert OPERATOR_TOKEN not in (await alice.get("/api/v1/sources/notes")).text

    found = await tool(alice, "find_block", {"query": "add two integers"})
    assert ADD in [b["id"] for b in found["blocks"]]
    before = list(seen.calls)
    for client, token in ((alice, ALICE_TOKEN), (bob, BOB_TOKEN)):
        needs = await in_chat(
            client, "run_block", {"block_id": ADD, "input_data": {"a": 1, "b": 2}}
        )
        assert needs["type"] == "setup_requirements", needs
        [entry] = needs["setup_info"]["user_readiness"]["missing_credentials"].values()
        assert entry["provider"] == "notes"
        assert seen.calls == before  # no token, no upstream call
        await enter_key_on_setup_page(anon, entry["setup_url"], token)

    for n in range(2):
        ran = await in_chat(alice, "run_block", {"block_id": ADD, "input_data": {"a": n, "b": 40}})
        assert ran["type"] == "block_output", ran
        assert ran["outputs"]["result"] == [{"result": n + 40}]
    ran = await in_chat(bob, "run_block", {"block_id": ADD, "input_data": {"a": 1, "b": 1}})
    assert ran["outputs"]["result"] == [{"result": 2}]
    calls = seen.calls[len(before) :]
    assert [m for who, m in calls if m == "tools/call"] == ["tools/call"] * 3
    assert [who for who, m in calls if m == "tools/call"] == ["alice", "alice", "bob"]
    assert seen.initializes("alice") == 1 and seen.initializes("bob") == 1
    for client in (alice, bob):
        history = await client.get("/api/v1/executions")
        assert ALICE_TOKEN not in history.text and BOB_TOKEN not in history.text


async def test_a_command_server_over_http_needs_the_setting(clients: dict[str, Any]) -> None:
    body = {"kind": "mcp", "name": "clock", "command": "mcp-server-time"}
    refused = await clients["alice"].post("/api/v1/sources", json=body)
    assert refused.status_code == 422, refused.text
    assert "BLOCKPILOT_SOURCES_ALLOW_COMMANDS" in refused.json()["error"]["message"]
