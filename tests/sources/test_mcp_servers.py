"""Real MCP servers nobody here wrote, added as sources and run through ``pilot.call_tool``.

- ``mcp-server-time`` (PyPI): its own server object (``create_server``) served over
  streamable HTTP by the ``mcp`` SDK (the package itself only offers stdio).
- ``@modelcontextprotocol/server-everything`` (npm): ``mcp-server-everything streamableHttp``
  (or ``npx -y @modelcontextprotocol/server-everything streamableHttp``), on a free ``PORT``;
  skipped when Node is not installed.
"""

from __future__ import annotations

from typing import Any

import pytest

from blockpilot.pilot import Pilot
from blockpilot.sources.base import source_block_id
from blockpilot.storage.users import User

from .mcp_servers import everything_command, everything_server, time_mcp_server


async def run(pilot: Pilot, user: User, block: str, data: dict[str, Any]) -> Any:
    return await pilot.call_tool(
        "run_block", {"block_id": block, "input_data": data}, user_id=user.id
    )


async def test_mcp_server_time(pilot: Pilot, alice: User) -> None:
    async with time_mcp_server() as url:
        added = await pilot.sources.add_mcp("time", url)
        assert added.to_dict() == {"name": "time", "kind": "mcp", "blocks": 2, "skipped": []}
        shown = await pilot.sources.show("time")
        assert {op["operation"]: op["effect"] for op in shown["operations"]} == {
            "get_current_time": "read",
            "convert_time": "read",
        }
        now = source_block_id("time", "tool:get_current_time")
        found = await pilot.call_tool(
            "find_block", {"query": "current time in a timezone"}, user_id=alice.id
        )
        assert now in [b.id for b in found.blocks]
        details = await run(pilot, alice, now, {})
        assert details.type == "block_details"
        assert "timezone" in details.block.inputs["properties"]
        ran = await run(pilot, alice, now, {"timezone": "Europe/Paris"})
        assert ran.type == "block_output", ran
        [result] = ran.outputs["result"]
        assert result["timezone"] == "Europe/Paris" and "datetime" in result
        bad = await run(pilot, alice, now, {"timezone": "Mars/Olympus"})
        assert bad.type == "error" and "Mars/Olympus" in bad.message


@pytest.mark.skipif(
    everything_command() is None,
    reason="Node (npx) is not installed: @modelcontextprotocol/server-everything cannot run",
)
async def test_server_everything(pilot: Pilot, alice: User) -> None:
    async with everything_server() as url:
        added = await pilot.sources.add_mcp("everything", url)
        doc = added.to_dict()
        assert doc["blocks"] >= 5, doc
        echo = source_block_id("everything", "tool:echo")
        ran = await run(pilot, alice, echo, {"message": "hello from blockpilot"})
        assert ran.type == "block_output", ran
        assert any("hello from blockpilot" in t for t in ran.outputs["text"])
        add = source_block_id("everything", "tool:get-sum")
        if pilot.catalog.registry.get(add) is not None:
            summed = await run(pilot, alice, add, {"a": 2, "b": 40})
            assert summed.type == "block_output", summed
            assert any("42" in t for t in summed.outputs.get("text", [])), summed
