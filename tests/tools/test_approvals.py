"""Policies, reviews and at-most-once calls through run_block (docs/approvals.md).

Every "it ran once" is counted where the block itself records its runs (CALLS), never
inferred from the response alone.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from blockpilot.approvals.policy import Decision, PolicyRule, Selector
from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from tests.tools.bp_helpers import add_api_key, call, run_block
from tests.tools.bp_test_blocks import ApiKeyEchoBlock, EchoTextBlock, calls_of

ECHO = EchoTextBlock.id


async def _ask_for_writes(pilot: Pilot, user: User, session_id: str | None = None) -> None:
    await pilot.policies.add(
        PolicyRule(Selector.EFFECT, "write", Decision.ASK, user_id=user.id, session_id=session_id)
    )


async def _decide(
    pilot: Pilot, user: User, review_id: str, approve: bool, reason: str = ""
) -> bool:
    return await pilot.reviews.decide(
        user.id, review_id, approve=approve, by="test", reason=reason or None
    )


async def test_ask_answers_review_required_and_runs_nothing(pilot: Pilot, alice: User) -> None:
    await _ask_for_writes(pilot, alice)
    answer = await run_block(pilot, alice.id, ECHO, {"text": "<b>hi</b>", "times": 2})
    assert answer["type"] == "review_required"
    assert answer["effect"] == "write"
    assert answer["input_data"] == {"text": "<b>hi</b>", "times": 2}
    assert answer["rule"] == "user rule: ask effect=write"
    assert answer["block_name"] == "EchoTextBlock" and answer["review_id"]
    assert calls_of("EchoTextBlock") == []
    executions = await pilot.executions.list(alice.id)
    assert executions == []


async def test_an_approval_runs_exactly_that_call_once(pilot: Pilot, alice: User) -> None:
    await _ask_for_writes(pilot, alice)
    first = await run_block(pilot, alice.id, ECHO, {"text": "hi"})
    # Asking again before a decision gives the same review, not a second one.
    again = await run_block(pilot, alice.id, ECHO, {"text": "hi"})
    assert again["review_id"] == first["review_id"]
    assert await _decide(pilot, alice, first["review_id"], approve=True)

    ran = await run_block(pilot, alice.id, ECHO, {"text": "hi"})
    assert ran["type"] == "block_output" and ran["outputs"] == {"out": ["hi"]}
    assert len(calls_of("EchoTextBlock")) == 1
    review = await pilot.reviews.get(alice.id, first["review_id"])
    assert review is not None and review.status == "used"
    assert review.execution_id == ran["execution_id"]

    # Single use: the same call needs a new review.
    third = await run_block(pilot, alice.id, ECHO, {"text": "hi"})
    assert third["type"] == "review_required" and third["review_id"] != first["review_id"]
    assert len(calls_of("EchoTextBlock")) == 1


async def test_a_changed_input_needs_a_new_review(pilot: Pilot, alice: User) -> None:
    await _ask_for_writes(pilot, alice)
    first = await run_block(pilot, alice.id, ECHO, {"text": "hi", "times": 1})
    await _decide(pilot, alice, first["review_id"], approve=True)
    changed = await run_block(pilot, alice.id, ECHO, {"text": "hi", "times": 2})
    assert changed["type"] == "review_required"
    assert changed["review_id"] != first["review_id"]
    # Field order is not a change: the approved call still runs.
    same = await run_block(pilot, alice.id, ECHO, {"times": 1, "text": "hi"})
    assert same["type"] == "block_output"
    assert [c["input"].times for c in calls_of("EchoTextBlock")] == [1]


async def test_a_changed_credential_needs_a_new_review(pilot: Pilot, alice: User) -> None:
    await _ask_for_writes(pilot, alice)
    first_key = await add_api_key(pilot, alice.id, key="sk-first-0123456789abcdef")
    second_key = await add_api_key(pilot, alice.id, key="sk-second-0123456789abcdef")
    inputs = {"prompt": "p", "credentials": {"id": first_key}}
    first = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, inputs)
    assert first["type"] == "review_required"
    assert [c["id"] for c in first["credentials"]] == [first_key]
    assert "sk-first" not in json.dumps(first)
    await _decide(pilot, alice, first["review_id"], approve=True)

    other = await run_block(
        pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "p", "credentials": {"id": second_key}}
    )
    assert other["type"] == "review_required" and other["review_id"] != first["review_id"]
    ran = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, inputs)
    assert ran["type"] == "block_output" and ran["outputs"]["credential_id"] == [first_key]
    assert len(calls_of("ApiKeyEchoBlock")) == 1


async def test_a_rejection_answers_with_the_reason(pilot: Pilot, alice: User) -> None:
    await _ask_for_writes(pilot, alice)
    first = await run_block(pilot, alice.id, ECHO, {"text": "hi"})
    assert await _decide(pilot, alice, first["review_id"], approve=False, reason="not today")
    answer = await run_block(pilot, alice.id, ECHO, {"text": "hi"})
    assert answer["type"] == "error" and answer["code"] == "review_rejected"
    assert "not today" in answer["message"]
    cont = await call(
        pilot, "continue_run_block", {"review_id": first["review_id"]}, user_id=alice.id
    )
    assert cont["code"] == "review_rejected"
    assert calls_of("EchoTextBlock") == []
    # A decided review cannot be decided again.
    assert not await _decide(pilot, alice, first["review_id"], approve=True)


async def test_continue_run_block_runs_the_approved_call_once(pilot: Pilot, alice: User) -> None:
    await _ask_for_writes(pilot, alice)
    first = await run_block(pilot, alice.id, ECHO, {"text": "go"})
    pending = await call(
        pilot, "continue_run_block", {"review_id": first["review_id"]}, user_id=alice.id
    )
    assert pending["code"] == "review_pending"
    await _decide(pilot, alice, first["review_id"], approve=True)
    ran = await call(
        pilot, "continue_run_block", {"review_id": first["review_id"]}, user_id=alice.id
    )
    assert ran["type"] == "block_output" and ran["outputs"] == {"out": ["go"]}
    used = await call(
        pilot, "continue_run_block", {"review_id": first["review_id"]}, user_id=alice.id
    )
    assert used["code"] == "review_used"
    assert used["details"]["execution_id"] == ran["execution_id"]
    assert len(calls_of("EchoTextBlock")) == 1


async def test_another_user_can_neither_see_decide_nor_continue_a_review(
    pilot: Pilot, alice: User, bob: User
) -> None:
    await _ask_for_writes(pilot, alice)
    first = await run_block(pilot, alice.id, ECHO, {"text": "mine"})
    review_id = first["review_id"]
    assert not await _decide(pilot, bob, review_id, approve=True)
    assert await pilot.reviews.get(bob.id, review_id) is None
    assert await pilot.reviews.list(bob.id) == []
    cont = await call(pilot, "continue_run_block", {"review_id": review_id}, user_id=bob.id)
    assert cont["code"] == "review_not_found"
    # Bob's identical call is his own call: it is not covered by Alice's review.
    await _decide(pilot, alice, review_id, approve=True)
    bobs = await run_block(pilot, bob.id, ECHO, {"text": "mine"})
    assert bobs["type"] == "block_output"  # bob has no ask rule
    assert (await pilot.reviews.get(alice.id, review_id)).status == "approved"  # type: ignore[union-attr]


async def test_deny_names_the_rule_and_runs_nothing(pilot: Pilot, alice: User) -> None:
    await pilot.policies.add(
        PolicyRule(Selector.BLOCK, "EchoTextBlock", Decision.DENY, user_id=alice.id)
    )
    answer = await run_block(pilot, alice.id, ECHO, {"text": "x"})
    assert answer["type"] == "error" and answer["code"] == "policy_denied"
    assert "user rule: deny block=EchoTextBlock" in answer["message"]
    assert calls_of("EchoTextBlock") == []
    assert await pilot.executions.list(alice.id) == []


async def test_operator_defaults_come_from_settings(pilot_factory) -> None:  # type: ignore[no-untyped-def]
    pilot = await pilot_factory(policy_deny_effects=("write",), policy_ask_effects=())
    user, _ = await pilot.users.create("carol")
    answer = await run_block(pilot, user.id, ECHO, {"text": "x"})
    assert answer["code"] == "policy_denied" and "operator rule" in answer["message"]


async def test_user_rules_narrow_but_never_widen(pilot_factory) -> None:  # type: ignore[no-untyped-def]
    pilot = await pilot_factory(policy_ask_effects=("write",))
    user, _ = await pilot.users.create("dave")
    await pilot.policies.add(PolicyRule(Selector.EFFECT, "write", Decision.ALLOW, user_id=user.id))
    answer = await run_block(pilot, user.id, ECHO, {"text": "x"})
    assert answer["type"] == "review_required"
    assert answer["rule"] == "operator rule: ask effect=write"


async def test_a_session_rule_applies_to_that_session_only(pilot: Pilot, alice: User) -> None:
    first = await run_block(pilot, alice.id, ECHO, {"text": "x"})
    session = first["session_id"]
    await _ask_for_writes(pilot, alice, session_id=session)
    in_session = await run_block(pilot, alice.id, ECHO, {"text": "y"}, session_id=session)
    assert in_session["type"] == "review_required"
    elsewhere = await run_block(pilot, alice.id, ECHO, {"text": "y"})
    assert elsewhere["type"] == "block_output"


async def test_a_forced_dry_run_cannot_be_switched_off(pilot: Pilot, alice: User) -> None:
    first = await run_block(pilot, alice.id, ECHO, {"text": "x"})
    session = first["session_id"]
    await pilot.policies.add(
        PolicyRule(Selector.MODE, "dry_run", None, user_id=alice.id, session_id=session)
    )
    answer = await run_block(
        pilot, alice.id, ECHO, {"text": "y"}, session_id=session, dry_run=False
    )
    assert answer["type"] == "block_output" and answer["is_dry_run"] is True
    assert len(calls_of("EchoTextBlock")) == 1  # only the first call, before the rule


async def test_an_unknown_operator_effect_is_a_configuration_error(pilot_factory) -> None:  # type: ignore[no-untyped-def]
    from blockpilot.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="POLICY_ASK_EFFECTS"):
        await pilot_factory(policy_ask_effects=("writes",))


# ------------------------------------------------------------------------- idempotency


async def test_the_same_key_returns_the_first_result_without_running_again(
    pilot: Pilot, alice: User
) -> None:
    first = await run_block(pilot, alice.id, ECHO, {"text": "once"}, idempotency_key="k-1")
    second = await run_block(pilot, alice.id, ECHO, {"text": "once"}, idempotency_key="k-1")
    assert first["type"] == second["type"] == "block_output"
    assert second["execution_id"] == first["execution_id"]
    assert second["replayed"] is True and first["replayed"] is False
    assert len(calls_of("EchoTextBlock")) == 1
    assert len(await pilot.executions.list(alice.id)) == 1


async def test_the_same_key_with_other_inputs_is_a_conflict(pilot: Pilot, alice: User) -> None:
    await run_block(pilot, alice.id, ECHO, {"text": "once"}, idempotency_key="k-2")
    other = await run_block(pilot, alice.id, ECHO, {"text": "twice"}, idempotency_key="k-2")
    assert other["code"] == "idempotency_conflict"
    assert len(calls_of("EchoTextBlock")) == 1


async def test_keys_belong_to_one_user(pilot: Pilot, alice: User, bob: User) -> None:
    a = await run_block(pilot, alice.id, ECHO, {"text": "same"}, idempotency_key="shared")
    b = await run_block(pilot, bob.id, ECHO, {"text": "same"}, idempotency_key="shared")
    assert b["type"] == "block_output" and b["replayed"] is False
    assert a["execution_id"] != b["execution_id"]
    assert len(calls_of("EchoTextBlock")) == 2


async def test_concurrent_calls_with_one_key_run_once(pilot: Pilot, alice: User) -> None:
    answers = await asyncio.gather(
        *(
            run_block(pilot, alice.id, ECHO, {"text": "burst"}, idempotency_key="k-burst")
            for _ in range(20)
        )
    )
    assert {a["type"] for a in answers} == {"block_output"}
    assert len({a["execution_id"] for a in answers}) == 1
    assert sum(not a["replayed"] for a in answers) == 1
    assert len(calls_of("EchoTextBlock")) == 1


async def test_a_key_that_waited_for_review_still_runs_once(pilot: Pilot, alice: User) -> None:
    await _ask_for_writes(pilot, alice)
    first = await run_block(pilot, alice.id, ECHO, {"text": "r"}, idempotency_key="k-rev")
    assert first["type"] == "review_required"
    await _decide(pilot, alice, first["review_id"], approve=True)
    ran = await run_block(pilot, alice.id, ECHO, {"text": "r"}, idempotency_key="k-rev")
    again = await run_block(pilot, alice.id, ECHO, {"text": "r"}, idempotency_key="k-rev")
    assert ran["type"] == "block_output" and again["replayed"] is True
    assert len(calls_of("EchoTextBlock")) == 1


async def test_a_bad_key_is_refused(pilot: Pilot, alice: User) -> None:
    answer = await run_block(pilot, alice.id, ECHO, {"text": "x"}, idempotency_key="")
    assert answer["code"] == "invalid_arguments"
    answer = await run_block(pilot, alice.id, ECHO, {"text": "x"}, idempotency_key=7)
    assert answer["code"] == "invalid_arguments"


async def test_get_execution_reports_own_runs_only(pilot: Pilot, alice: User, bob: User) -> None:
    ran = await run_block(pilot, alice.id, ECHO, {"text": "out"}, idempotency_key="k-get")
    mine = await call(
        pilot, "get_execution", {"execution_id": ran["execution_id"]}, user_id=alice.id
    )
    assert mine["type"] == "execution_status"
    assert mine["execution"]["status"] == "completed"
    assert mine["outputs"] == {"out": ["out"]}
    theirs = await call(
        pilot, "get_execution", {"execution_id": ran["execution_id"]}, user_id=bob.id
    )
    assert theirs["code"] == "execution_not_found"
