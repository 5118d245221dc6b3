"""MCP at /mcp inside the real service, authenticated by the same bearer API keys."""

from __future__ import annotations

import anyio
import httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from blockpilot.pilot import Pilot

CALCULATOR = "b1ab9b19-67a6-406d-abf5-2dba76d00c79"


async def test_mcp_in_the_service_runs_as_the_keys_user(
    base_url: str, pilot: Pilot, alice, alice_key: str
) -> None:
    headers = {"Authorization": f"Bearer {alice_key}"}
    with anyio.fail_after(20):
        async with (
            create_mcp_http_client(headers=headers) as http,
            Client(streamable_http_client(f"{base_url}/mcp", http_client=http)) as client,
        ):
            ran = await client.call_tool(
                "run_block",
                {"block_id": CALCULATOR, "input_data": {"operation": "power", "a": 2, "b": 10}},
            )
    assert ran.structured_content["outputs"] == {"result": [1024.0]}
    [record] = await pilot.executions.list(alice.id)
    assert record.block_name == "CalculatorBlock"


async def test_mcp_in_the_service_refuses_a_bad_key(base_url: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{base_url}/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={
                "Authorization": "Bearer bp_wrong",
                "Accept": "application/json, text/event-stream",
            },
        )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
