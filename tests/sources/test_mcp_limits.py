"""An MCP tool that hangs meets the same time limit as any block, and the upstream call is
cancelled with it; the session stays usable for the next call (floods and the guarded client:
test_mcp_guarded.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer

from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.sources.base import source_block_id
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
