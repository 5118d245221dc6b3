"""The gate keeps the operator's verdict per block (docs/approvals.md): every verdict it gives
is still the one all the rules, operator's first, decide together."""

from __future__ import annotations

import itertools

from blockpilot.approvals.policy import BlockFacts, Decision, PolicyRule, Selector, decide
from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from tests.tools.bp_test_blocks import ApiKeyEchoBlock, EchoTextBlock

OPERATOR_CHOICES: list[list[PolicyRule]] = [
    [],
    [PolicyRule(Selector.EFFECT, "destructive", Decision.ASK)],
    [PolicyRule(Selector.EFFECT, "write", Decision.ASK)],
    [
        PolicyRule(Selector.EFFECT, "write", Decision.ASK),
        PolicyRule(Selector.EFFECT, "write", Decision.DENY),
    ],
    # Scoped operator rules are not made from settings, but the gate must still honour them.
    [PolicyRule(Selector.EFFECT, "write", Decision.DENY, session_id="s-1")],
    [PolicyRule(Selector.MODE, "dry_run", None, api_key_id="k-1")],
]


def _user_choices(user_id: str) -> list[list[PolicyRule]]:
    return [
        [],
        [PolicyRule(Selector.EFFECT, "write", Decision.ALLOW, user_id=user_id)],
        [PolicyRule(Selector.BLOCK, "EchoTextBlock", Decision.DENY, user_id=user_id)],
        [PolicyRule(Selector.PROVIDER, "openai", Decision.ASK, user_id=user_id)],
        [PolicyRule(Selector.EFFECT, "write", Decision.ASK, user_id=user_id, session_id="s-1")],
        [PolicyRule(Selector.MODE, "dry_run", None, user_id=user_id, session_id="s-2")],
        [
            PolicyRule(Selector.EFFECT, "write", Decision.ASK, user_id=user_id, api_key_id="k-1"),
            PolicyRule(Selector.BLOCK, "EchoTextBlock", Decision.DENY, user_id=user_id),
        ],
    ]


async def test_every_verdict_is_what_all_the_rules_decide_together(
    pilot: Pilot, alice: User
) -> None:
    gate = pilot.gate
    blocks = [pilot.registry.get(EchoTextBlock.id), pilot.registry.get(ApiKeyEchoBlock.id)]
    calls = list(itertools.product([None, "s-1", "s-2"], [None, "k-1"]))
    for user_rules in _user_choices(alice.id):
        for rule in await pilot.policies.for_user(alice.id):
            assert rule.id is not None
            await pilot.policies.remove(alice.id, rule.id)
        for rule in user_rules:
            await pilot.policies.add(rule)
        stored = await pilot.policies.for_user(alice.id)
        for operator in OPERATOR_CHOICES:
            gate.operator_rules[:] = operator  # a changed operator list is used at once
            for block, (session_id, api_key_id) in itertools.product(blocks, calls):
                assert block is not None
                expected = decide(
                    BlockFacts.of(block),
                    [*operator, *stored],
                    session_id=session_id,
                    api_key_id=api_key_id,
                )
                got = await gate.verdict(block, alice.id, session_id, api_key_id)
                assert got == expected, (operator, user_rules, block.name, session_id)
