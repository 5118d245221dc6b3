"""A stdio MCP server added over HTTP (``BLOCKPILOT_SOURCES_ALLOW_COMMANDS=true``): the
operator's ``env`` values are stored but never shown; each user's call reaches the one
process and gets their own answer."""

from __future__ import annotations

from typing import Any

import pytest

from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.sources.base import source_block_id

from .test_mcp_transports import ENV_CANARY, TIME_COMMAND


@pytest.fixture
def settings(settings_factory: Any) -> Settings:
    return settings_factory(admin_users=("alice",), sources_allow_commands=True)


async def test_add_a_command_server_and_run_it_as_two_users(
    pilot: Pilot, clients: dict[str, Any]
) -> None:
    alice, bob = clients["alice"], clients["bob"]
    body = {
        "kind": "mcp",
        "name": "clock",
        "command": TIME_COMMAND,
        "env": [f"BP_TEST_SETTING={ENV_CANARY}"],
    }
    assert (await bob.post("/api/v1/sources", json=body)).status_code == 403
    bearer = await alice.post("/api/v1/sources", json={**body, "auth": "bearer"})
    assert bearer.status_code == 422 and "per-user secret" in bearer.text
    added = await alice.post("/api/v1/sources", json=body)
    assert added.status_code == 201, added.text
    assert added.json()["blocks"] == 2
    shown = await alice.get("/api/v1/sources/clock")
    assert shown.json()["env"] == ["BP_TEST_SETTING"] and ENV_CANARY not in shown.text

    now = source_block_id("clock", "tool:get_current_time")
    for client, zone in ((alice, "Asia/Tokyo"), (bob, "Africa/Cairo")):
        call = {"block_id": now, "input_data": {"timezone": zone}}
        response = await client.post("/api/v1/tools/run_block", json=call)
        assert response.status_code == 200, response.text
        ran = response.json()
        assert ran["type"] == "block_output", ran
        assert ran["outputs"]["result"][0]["timezone"] == zone
        assert ENV_CANARY not in response.text
    await pilot.sources.aclose()
