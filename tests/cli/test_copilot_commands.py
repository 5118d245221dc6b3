"""``blockpilot mcp`` and ``blockpilot chat`` as wired into the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.storage.users import User
from tests.mcp.mcp_helpers import server_env

CALCULATOR = "b1ab9b19-67a6-406d-abf5-2dba76d00c79"


async def test_blockpilot_mcp_serves_the_user_over_stdio(
    pilot: Pilot, alice: User, settings: Settings, tmp_path: Path
) -> None:
    script = str(Path(sys.executable).with_name("blockpilot"))
    env = server_env(settings.home, settings.encryption_keys[0].get_secret_value())
    params = StdioServerParameters(
        command=script, args=["mcp", "--user", "alice"], env=env, cwd=tmp_path
    )
    with anyio.fail_after(30):
        async with Client(params) as client:
            ran = await client.call_tool(
                "run_block",
                {"block_id": CALCULATOR, "input_data": {"operation": "add", "a": 2, "b": 3}},
            )
    assert ran.structured_content["type"] == "block_output"
    assert ran.structured_content["outputs"] == {"result": [5.0]}
    [record] = await pilot.executions.list(alice.id)
    assert record.status == "completed"
