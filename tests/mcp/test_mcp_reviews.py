"""Reviews over MCP (docs/approvals.md): the approval page shown by URL elicitation where the
client supports it, a plain review_required result where it does not; approval and
continue_run_block then run the call once."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp.server import Server
from mcp_types import ElicitRequestURLParams, ElicitResult

from blockpilot.approvals.policy import Decision, PolicyRule, Selector
from blockpilot.mcp import build_mcp_server
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.storage.users import User
from tests.mcp.mcp_helpers import CALCULATOR_BLOCK_ID, PUBLIC_URL

MODES = ["legacy", "auto"]
APPROVAL_BASE = f"{PUBLIC_URL}/reviews"
ADD = {"operation": "add", "a": 2, "b": 3}


@pytest.fixture
def pilot_settings(settings: Settings) -> Settings:
    """Answers carry approval links, as where the service runs."""
    return settings.model_copy(update={"public_url": PUBLIC_URL})


def review_of(pilot: Pilot, approval_url: str) -> tuple[str, str]:
    """The (user id, review id) an approval link names."""
    assert approval_url.startswith(f"{APPROVAL_BASE}/")
    return pilot.review_links.open(approval_url.removeprefix(f"{APPROVAL_BASE}/"))


@pytest.fixture
async def server(pilot: Pilot, alice: User) -> Server[Any]:
    await pilot.policies.add(PolicyRule(Selector.EFFECT, "read", Decision.ASK, user_id=alice.id))
    return build_mcp_server(pilot, alice.id)


@pytest.mark.parametrize("mode", MODES)
async def test_without_elicitation_the_result_says_a_review_is_needed(
    pilot: Pilot, alice: User, server: Server[Any], mode: str
) -> None:
    async with Client(server, mode=mode) as client:
        asked = await client.call_tool(
            "run_block", {"block_id": CALCULATOR_BLOCK_ID, "input_data": ADD}
        )
        data = asked.structured_content
        assert asked.is_error is False and data["type"] == "review_required"
        assert review_of(pilot, data["approval_url"]) == (alice.id, data["review_id"])
        assert await pilot.reviews.decide(
            alice.id, data["review_id"], approve=True, by="test", reason=None
        )
        ran = await client.call_tool("continue_run_block", {"review_id": data["review_id"]})
        assert ran.structured_content["outputs"] == {"result": [5.0]}
        again = await client.call_tool("continue_run_block", {"review_id": data["review_id"]})
        assert again.is_error is True and again.structured_content["code"] == "review_used"


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_with_url_elicitation_shows_the_approval_page(
    pilot: Pilot, alice: User, server: Server[Any], mode: str
) -> None:
    seen: list[ElicitRequestURLParams] = []

    async def on_elicit(context: Any, params: Any) -> ElicitResult:
        assert isinstance(params, ElicitRequestURLParams)
        seen.append(params)
        return ElicitResult(action="accept")

    async with Client(server, mode=mode, elicitation_callback=on_elicit) as client:
        asked = await client.call_tool(
            "run_block", {"block_id": CALCULATOR_BLOCK_ID, "input_data": ADD}
        )
    data = asked.structured_content
    assert data["type"] == "review_required"
    [url] = [p.url for p in seen]
    assert review_of(pilot, url) == (alice.id, data["review_id"])
    assert "CalculatorBlock" in seen[0].message


async def test_get_execution_is_read_only_and_continue_is_not(server: Server[Any]) -> None:
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert tools["get_execution"].annotations.read_only_hint is True
    assert tools["continue_run_block"].annotations.read_only_hint is False
