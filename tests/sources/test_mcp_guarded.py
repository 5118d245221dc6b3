"""MCP traffic goes through the guarded client: the source's own origin is exempt from the
private-address guard for its blocks only, a flooding server hits the size limit, a server
that never answers the handshake fails the call instead of holding it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer

from blockpilot.blocks.library.http import SendWebRequestBlock
from blockpilot.errors import InvalidInputError
from blockpilot.net.policy import exempt_destination
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.sources.base import SourceOptions, source_block_id
from blockpilot.sources.mcp._sessions import CONNECT_SECONDS, list_tools, session_pool
from blockpilot.sources.mcp.kind import listing_text
from blockpilot.storage.users import User
from blockpilot.testing import serve_asgi


@pytest.fixture
def settings(settings_factory: Any) -> Settings:
    # No BLOCKPILOT_HTTP_ALLOWED_HOSTS: the loopback servers are reachable only through a
    # source's own exemption.
    return settings_factory()


@pytest.fixture
async def url() -> AsyncIterator[str]:
    server = MCPServer("plain")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text."""
        return text

    async with serve_asgi(server.streamable_http_app()) as base:
        yield base + "/mcp"


@pytest.fixture
async def flood_url() -> AsyncIterator[str]:
    server = MCPServer("flood")

    @server.tool()
    def flood(megabytes: int) -> str:
        """Answer with a huge text."""
        return "x" * (megabytes * 1024 * 1024)

    async with serve_asgi(server.streamable_http_app()) as base:
        yield base + "/mcp"


async def test_a_flooding_tool_hits_the_size_limit(
    pilot: Pilot, alice: User, flood_url: str
) -> None:
    await pilot.sources.add_mcp("flood", flood_url)
    chat = (await pilot.session_for(alice.id, None)).session_id
    limit = pilot.http.policy.max_response_bytes
    call = {"block_id": source_block_id("flood", "tool:flood"), "input_data": {}}
    call["input_data"] = {"megabytes": limit // (1024 * 1024) + 1}
    flooded = await pilot.call_tool("run_block", call, user_id=alice.id, session_id=chat)
    assert flooded.type == "error" and flooded.error == "block_failed", flooded
    assert f"larger than {limit} bytes" in flooded.message
    call["input_data"] = {"megabytes": 1}
    fine = await pilot.call_tool("run_block", call, user_id=alice.id, session_id=chat)
    assert fine.type == "block_output", fine
    await pilot.sources.aclose()


async def test_the_guard_applies_and_the_exemption_is_the_sources_own(
    pilot: Pilot, alice: User, url: str
) -> None:
    # Without the source's exemption the guarded client refuses the loopback server.
    with pytest.raises(InvalidInputError, match="Destination blocked"):
        await list_tools(url, {}, http=pilot.http)
    await pilot.sources.add_mcp("plain", url)
    chat = (await pilot.session_for(alice.id, None)).session_id
    echo = {"block_id": source_block_id("plain", "tool:echo"), "input_data": {"text": "ok"}}
    ran = await pilot.call_tool("run_block", echo, user_id=alice.id, session_id=chat)
    assert ran.type == "block_output", ran
    # Another block cannot use the exemption to reach the same server.
    other = {
        "block_id": SendWebRequestBlock.id,
        "input_data": {"url": url, "method": "POST", "body": {"jsonrpc": "2.0"}},
    }
    refused = await pilot.call_tool("run_block", other, user_id=alice.id, session_id=chat)
    assert refused.type == "error" and "Destination blocked" in refused.message, refused
    await pilot.sources.aclose()


async def test_a_server_that_never_answers_the_handshake(
    pilot: Pilot, alice: User, url: str
) -> None:
    tools, _ = await list_tools(url, {}, http=pilot.http.with_exemptions([exempt_destination(url)]))

    async def silent(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive())["type"] != "http.disconnect":
            pass  # reads the request, never answers, until the client gives up

    async with serve_asgi(silent) as base:
        mute = base + "/mcp"
        await pilot.sources.add("mcp", "mute", listing_text(mute, "none", tools), SourceOptions())
        pool = session_pool()
        pool.connect_seconds = 0.5
        try:
            chat = (await pilot.session_for(alice.id, None)).session_id
            call = {"block_id": source_block_id("mute", "tool:echo"), "input_data": {"text": "?"}}
            ran = await pilot.call_tool("run_block", call, user_id=alice.id, session_id=chat)
            assert ran.type == "error" and ran.error == "block_failed", ran
            assert "did not complete the handshake" in ran.message
            assert pool.open_sessions() == 0
        finally:
            pool.connect_seconds = CONNECT_SECONDS
