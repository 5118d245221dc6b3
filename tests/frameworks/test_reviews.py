"""A call a person must approve, through an adapter: ``review_required`` comes back as a
result the model can relay (with the approval link), and after the person approves,
``continue_run_block`` in the same session runs it once."""

from __future__ import annotations

import json

import pytest

from blockpilot.approvals.policy import Decision, PolicyRule, Selector
from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from tests.frameworks.scenario import PUBLIC_URL

pytest.importorskip("langchain_core")

from blockpilot.integrations.langchain import langchain_tools  # noqa: E402

CALCULATOR = "b1ab9b19-67a6-406d-abf5-2dba76d00c79"
ADD = {"operation": "add", "a": 2, "b": 3}


async def test_review_required_is_relayed_then_continued_in_the_same_session(
    pilot: Pilot, alice: User, bob: User
) -> None:
    await pilot.policies.add(
        PolicyRule(Selector.BLOCK, "CalculatorBlock", Decision.ASK, user_id=alice.id)
    )
    tools = {t.name: t for t in langchain_tools(pilot, user_id=alice.id)}

    asked = json.loads(
        await tools["run_block"].ainvoke({"block_id": CALCULATOR, "input_data": ADD})
    )
    assert asked["type"] == "review_required"
    token = asked["approval_url"].removeprefix(f"{PUBLIC_URL}/reviews/")
    assert pilot.review_links.open(token) == (alice.id, asked["review_id"])

    # Bob's agent cannot continue Alice's review, even with its id.
    bobs = {t.name: t for t in langchain_tools(pilot, user_id=bob.id)}
    stolen = json.loads(await bobs["continue_run_block"].ainvoke({"review_id": asked["review_id"]}))
    assert stolen["type"] == "error"

    assert await pilot.reviews.decide(
        alice.id, asked["review_id"], approve=True, by="alice", reason=None
    )
    ran = json.loads(await tools["continue_run_block"].ainvoke({"review_id": asked["review_id"]}))
    assert ran["type"] == "block_output", ran
    assert ran["session_id"] == asked["session_id"]
    status = json.loads(await tools["get_execution"].ainvoke({"execution_id": ran["execution_id"]}))
    assert status["type"] == "execution_status" and status["session_id"] == asked["session_id"]
