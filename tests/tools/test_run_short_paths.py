"""The runner's short paths for the usual call give what the long ones give (docs/performance.md).

A call the gate simply allows, without an idempotency key, runs without ``_gated`` around
it; a block without credentials fields is matched without a coroutine; outputs that surely
fit are not handed to ``_cap_outputs``. Each short path is compared with the path it skips.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from blockpilot.approvals.policy import Decision, PolicyRule, Selector
from blockpilot.credentials.matching import CredentialsMatch
from blockpilot.outcomes import RunOutcome
from blockpilot.pilot import Pilot
from blockpilot.redaction import Redactor
from blockpilot.runner import (
    _NO_CREDENTIALS,
    _clip_strings,
    _json_len,
    _json_len_at_most,
    _record_input,
)
from blockpilot.storage.users import User
from blockpilot.tools.outcomes import tool_response
from tests.tools.bp_test_blocks import BigOutputBlock, EchoTextBlock

# What differs between two runs of the same call: the execution's id and its times.
_PER_RUN = {"id", "execution_id", "started_at", "finished_at", "duration_ms"}


def _answer(outcome: RunOutcome) -> dict[str, Any]:
    data = tool_response(outcome, "s").model_dump(mode="json")
    return {k: v for k, v in data.items() if k not in _PER_RUN}


async def _last_record(pilot: Pilot, user: User) -> dict[str, Any]:
    await pilot.executions.flush()
    records = await pilot.executions.list(user.id)
    newest = max(records, key=lambda r: r.started_at)
    return {k: v for k, v in newest.public().items() if k not in _PER_RUN}


async def test_an_allowed_call_runs_as_through_the_gate(pilot: Pilot, alice: User) -> None:
    runner, gate = pilot.runner, pilot.gate
    session = (await pilot.session_for(alice.id, None)).session_id
    block = pilot.registry.get(EchoTextBlock.id)
    assert block is not None
    force_dry_run = PolicyRule(Selector.MODE, "dry_run", None, user_id=alice.id)
    for rules in ([], [force_dry_run]):
        for rule in rules:
            await pilot.policies.add(rule)
        for dry_run in (False, True):
            raw = {"text": "hi", "times": 2, "tag": "t"}
            verdict = await gate.verdict(block, alice.id, session, None)
            assert verdict.decision is Decision.ALLOW
            assert verdict.force_dry_run is bool(rules)
            short = await runner.run(
                user_id=alice.id,
                session_id=session,
                block_id=block.id,
                input_data=dict(raw),
                dry_run=dry_run,
            )
            short_record = await _last_record(pilot, alice)
            typed = block.validate_input(dict(raw))
            gated = await runner._gated(
                block,
                alice.id,
                session,
                typed,
                dict(raw),
                CredentialsMatch(),
                dry_run,
                None,
                verdict,
            )
            assert _answer(short) == _answer(gated)
            assert short_record == await _last_record(pilot, alice)
            assert _answer(short)["is_dry_run"] is (dry_run or bool(rules))


async def test_a_block_without_credentials_fields_matches_nothing(
    pilot: Pilot, alice: User
) -> None:
    block = pilot.registry.get(EchoTextBlock.id)
    assert block is not None and not block.Input.credentials_fields()
    for for_execution in (False, True):
        matched = await pilot.runner._match(
            block, alice.id, {"text": "x"}, for_execution=for_execution
        )
        assert matched == CredentialsMatch()


async def test_the_shared_empty_match_stays_empty(pilot: Pilot, alice: User) -> None:
    """Runs of blocks without credentials fields share one empty match: none changes it."""
    session = (await pilot.session_for(alice.id, None)).session_id
    for input_data, dry_run in (
        ({}, False),
        ({"text": "a", "tag": "t"}, False),
        ({"text": "b"}, True),
    ):
        await pilot.runner.run(
            user_id=alice.id,
            session_id=session,
            block_id=EchoTextBlock.id,
            input_data=input_data,
            dry_run=dry_run,
        )
    assert CredentialsMatch() == _NO_CREDENTIALS


async def test_outputs_at_the_limit_are_capped_as_before(pilot: Pilot, alice: User) -> None:
    """Around max_output_chars, whether the answer is cut is what _cap_outputs decides."""
    limit = pilot.runner.limits.max_output_chars
    session = (await pilot.session_for(alice.id, None)).session_id
    for size in (limit // 2 - 20, limit - 20, limit - 14, limit - 13, limit - 12, limit + 5):
        outcome = await pilot.runner.run(
            user_id=alice.id,
            session_id=session,
            block_id=BigOutputBlock.id,
            input_data={"size": size},
        )
        answer = _answer(outcome)
        outputs = {"data": ["".join(chr(ord("a") + j % 26) for j in range(size))]}
        fits = _json_len(outputs) <= limit
        assert answer["output_truncated"] is not fits, size
        if fits:
            assert answer["outputs"] == outputs


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), st.lists(_JSON, max_size=4), max_size=4))
def test_the_quick_bound_never_says_less_than_the_length(outputs: dict[str, list[Any]]) -> None:
    """The run skips _cap_outputs only when this bound fits: then the outputs fit, and
    _cap_outputs would have returned them unchanged."""
    assert _json_len(outputs) <= _json_len_at_most(outputs)


@given(
    st.dictionaries(st.sampled_from(["text", "creds", "note", "n"]), _JSON, max_size=4),
    st.booleans(),
    st.sampled_from(["", "sk-secret-0123456789abcdef"]),
)
def test_the_record_keeps_what_the_inline_expression_kept(
    raw: dict[str, Any], with_credentials: bool, secret: str
) -> None:
    """_record_input is the expression the run had inline (moved out so that a run in
    flight holds no closure cell): the same record input for any input."""
    if secret:
        raw = {**raw, "note": f"key {secret} and {'x' * 2_100}"}
    cred_kwargs = {"creds": object()} if with_credentials else {}
    redactor = Redactor([secret] if secret else [])
    inline = _clip_strings(
        redactor.scrub(
            {k: v for k, v in raw.items() if k not in cred_kwargs} if cred_kwargs else raw
        )
    )
    assert _record_input(raw, cred_kwargs, redactor) == inline
