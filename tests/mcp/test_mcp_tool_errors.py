"""Input validation failures are tool errors (``isError: true``) over real MCP sessions, so
the model reads them as something to correct (``docs/mcp.md``)."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp.server import Server

from blockpilot.mcp import build_mcp_server
from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from tests.mcp.mcp_helpers import CALCULATOR_BLOCK_ID


@pytest.fixture
def server(pilot: Pilot, alice: User) -> Server[Any]:
    return build_mcp_server(pilot, alice.id)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_input_validation_error_is_a_tool_error(
    pilot: Pilot, alice: User, server: Server[Any], mode: str
) -> None:
    async with Client(server, mode=mode) as client:
        wrong = await client.call_tool(
            "run_block",
            {
                "block_id": CALCULATOR_BLOCK_ID,
                "input_data": {"operation": "add", "a": "two", "b": 3},
            },
        )
        corrected = await client.call_tool(
            "run_block",
            {"block_id": CALCULATOR_BLOCK_ID, "input_data": {"operation": "add", "a": 2, "b": 3}},
        )
    data = wrong.structured_content
    assert data["type"] == "input_validation_error"
    assert wrong.is_error is True
    assert "a" in data["errors"]  # what to fix is in the result the model reads
    assert '"input_validation_error"' in wrong.content[-1].text
    assert corrected.is_error is False and corrected.structured_content["outputs"]["result"] == [5]
    # Nothing ran for the refused call: only the corrected run is recorded.
    assert len(await pilot.executions.list(alice.id)) == 1
