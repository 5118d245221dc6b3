"""One owner for a run's time limit (docs/tools.md): the block timeout is what the caller
and the execution record see.

Before: with ``BLOCKPILOT_BLOCK_TIMEOUT_SECONDS`` equal to ``BLOCKPILOT_TOOL_TIMEOUT_SECONDS``
(both 120 by default) the tool's outer timeout always fired first, so callers got a generic
``timeout`` and the record said ``cancelled``, never ``block_timeout`` / ``timed_out``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

import httpx
import pytest

from blockpilot.api import create_app
from blockpilot.blocks.registry import BlockRegistry
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from tests.tools.bp_helpers import make_registry
from tests.tools.bp_test_blocks import ALL_BLOCKS, SlowBlock


class PatientSleepBlock(SlowBlock):
    id = "6a0f2c1e-1111-4a8e-9b51-0000000000a1"
    description = "Sleeps, limited by BLOCKPILOT_BLOCK_TIMEOUT_SECONDS (no limit of its own)."
    timeout_seconds: ClassVar[float | None] = None


class OwnLimitSleepBlock(SlowBlock):
    id = "6a0f2c1e-1111-4a8e-9b51-0000000000a2"
    description = "Sleeps, with a time limit of its own longer than the tool's."
    timeout_seconds: ClassVar[float | None] = 1.5


@pytest.fixture
def pilot_settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(block_timeout_seconds=1, tool_timeout_seconds=1)


@pytest.fixture
def pilot_registry() -> BlockRegistry:
    return make_registry([*ALL_BLOCKS, PatientSleepBlock, OwnLimitSleepBlock])


async def _run(pilot: Pilot, user_id: str, block_id: str) -> dict[str, Any]:
    response = await pilot.call_tool(
        "run_block",
        {"block_id": block_id, "input_data": {"seconds": 30}},
        user_id=user_id,
    )
    data: dict[str, Any] = json.loads(response.to_json())
    return data


@pytest.mark.parametrize("block", [PatientSleepBlock, OwnLimitSleepBlock])
async def test_the_block_timeout_fires_and_is_recorded(pilot: Pilot, block: type[Any]) -> None:
    alice, _ = await pilot.users.create("alice")
    data = await _run(pilot, alice.id, block.id)
    assert data["type"] == "error" and data["code"] == "block_timeout", data
    limit = block.timeout_seconds or 1
    assert f"timed out after {limit:g}s" in data["message"]
    [record] = await pilot.executions.list(alice.id)
    assert record.status == "timed_out" and record.error_code == "block_timeout"


async def test_over_http_the_caller_sees_block_timeout(pilot: Pilot) -> None:
    alice, key = await pilot.users.create("alice")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(pilot)),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    ) as client:
        answer = await client.post(
            "/api/v1/tools/run_block",
            json={"block_id": PatientSleepBlock.id, "input_data": {"seconds": 30}},
        )
    assert answer.json()["code"] == "block_timeout", answer.text
    [record] = await pilot.executions.list(alice.id)
    assert record.status == "timed_out"


def test_run_block_allows_the_block_its_limit_plus_the_tool_timeout(pilot: Pilot) -> None:
    tool = pilot.tools["run_block"]
    assert tool.time_limit({"block_id": PatientSleepBlock.id}) == 1 + 1
    assert tool.time_limit({"block_id": OwnLimitSleepBlock.id}) == 1.5 + 1
    assert tool.time_limit({"block_id": "no such block"}) == 1 + 1
    assert pilot.tools["find_block"].time_limit({"query": "x"}) == 1
