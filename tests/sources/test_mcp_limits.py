"""An MCP server that hangs or floods meets the same time and size limits as any block (the
upstream call is cancelled; the session stays usable), and MCP traffic goes through the guarded
client: the source's own origin is exempt from the private-address guard for its blocks only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer

from blockpilot.blocks.library.http import SendWebRequestBlock
from blockpilot.errors import InvalidInputError
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.sources.base import source_block_id
from blockpilot.sources.mcp.sessions import list_tools
from blockpilot.storage.users import User
from blockpilot.testing import serve_asgi


@pytest.fixture
def settings(settings_factory: Any) -> Settings:
    return settings_factory(block_timeout_seconds=1.0)


@pytest.fixture
async def url() -> AsyncIterator[str]:
    server = MCPServer("slow")

    @server.tool()
    async def hang(seconds: int) -> str:
        """Wait, then answer."""
        await asyncio.sleep(seconds)
        return "done"

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text."""
        return text

    async with serve_asgi(server.streamable_http_app()) as base:
        yield base + "/mcp"


async def test_a_hanging_tool_times_out(pilot: Pilot, alice: User, url: str) -> None:
    await pilot.sources.add_mcp("slow", url)
    chat = (await pilot.session_for(alice.id, None)).session_id

    async def run(block: str, data: dict[str, Any]) -> Any:
        call = {"block_id": source_block_id("slow", block), "input_data": data}
        return await pilot.call_tool("run_block", call, user_id=alice.id, session_id=chat)

    hung = await run("tool:hang", {"seconds": 600})
    assert hung.type == "error" and hung.error == "block_timeout", hung
    echoed = await run("tool:echo", {"text": "still here"})
    assert echoed.type == "block_output", echoed
    assert echoed.outputs["text"] == ["still here"]


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
    await pilot.sources.add_mcp("slow", url)
    chat = (await pilot.session_for(alice.id, None)).session_id
    echo = {"block_id": source_block_id("slow", "tool:echo"), "input_data": {"text": "ok"}}
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
