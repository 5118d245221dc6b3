"""The approval gate run_block passes before a block runs (docs/approvals.md).

In order: the policy's verdict (``deny`` ends the call with ``policy_denied``); for ``ask``,
an approval bound to exactly this call (user, block, canonical inputs, credentials) that a
person gave and that was not used yet; otherwise a review is opened (or the open one
reused) and the call answers ``review_required`` without running anything.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from blockpilot.approvals.policy import ALLOWED, BlockFacts, PolicyRule, Verdict, decide
from blockpilot.blocks.base import Block
from blockpilot.storage.idempotency import IdempotencyStore
from blockpilot.storage.policies import PolicyStore
from blockpilot.storage.reviews import Review, ReviewStore

# Builds the signed page link where a person decides a review (the service sets it).
ApprovalUrlBuilder = Callable[[Review], str | None]


def call_digest(
    user_id: str, block_id: str, inputs: Mapping[str, Any], credential_ids: Iterable[str]
) -> str:
    """sha256 of the call an approval is bound to; any changed input or credential differs.

    Inputs are canonical JSON (sorted keys, no insignificant spaces), so the order in which
    a model sends the fields does not matter, but every value does.
    """
    canonical = json.dumps(
        {
            "user": user_id,
            "block": block_id,
            "inputs": inputs,
            "credentials": sorted(credential_ids),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class _KnownBlock:
    """A block's facts and the verdict of the operator's rules on it (None when one of them
    is scoped to a session or an API key, so the verdict depends on the call)."""

    facts: BlockFacts
    operator_rules: tuple[PolicyRule, ...]
    operator: Verdict | None

    @classmethod
    def of(cls, block: Block, operator_rules: tuple[PolicyRule, ...]) -> _KnownBlock:
        facts = BlockFacts.of(block)
        unscoped = all(r.session_id is None and r.api_key_id is None for r in operator_rules)
        verdict = decide(facts, operator_rules, session_id=None) if unscoped else None
        return cls(facts, operator_rules, verdict)


@dataclass(slots=True)
class ApprovalGate:
    policies: PolicyStore
    reviews: ReviewStore
    idempotency: IdempotencyStore
    operator_rules: list[PolicyRule]
    review_ttl_seconds: float
    approval_url_builder: ApprovalUrlBuilder | None = None
    # What rules can name about each block, and the operator's verdict on it, made once per
    # block object (every call asks).
    _known: weakref.WeakKeyDictionary[Block, _KnownBlock] = field(
        default_factory=weakref.WeakKeyDictionary, init=False, repr=False
    )

    async def verdict(
        self, block: Block, user_id: str, session_id: str | None, api_key_id: str | None = None
    ) -> Verdict:
        user_rules = await self.policies.for_user(user_id)
        operator = tuple(self.operator_rules)
        if not user_rules and not operator:  # nothing to match the block against
            return ALLOWED
        known = self._known.get(block)
        if known is None or known.operator_rules != operator:
            known = self._known[block] = _KnownBlock.of(block, operator)
        if known.operator is None:  # an operator rule scoped to a session or an API key
            rules = [*operator, *user_rules]
            return decide(known.facts, rules, session_id=session_id, api_key_id=api_key_id)
        if not user_rules:  # the usual case: the operator's rules alone
            return known.operator
        return decide(
            known.facts,
            user_rules,
            session_id=session_id,
            api_key_id=api_key_id,
            after=known.operator,
        )

    async def new_review(
        self,
        *,
        block: Block,
        user_id: str,
        session_id: str,
        digest: str,
        inputs: dict[str, Any],
        credential_ids: list[str],
        rule: str,
    ) -> Review:
        """A pending review of this exact call, for a person to decide."""
        return await self.reviews.create(
            user_id=user_id,
            session_id=session_id,
            block_id=block.id,
            block_name=block.name,
            effect=block.effect.value,
            digest=digest,
            input_data=inputs,
            credential_ids=credential_ids,
            rule=rule,
            ttl_seconds=self.review_ttl_seconds,
        )

    def approval_url(self, review: Review) -> str | None:
        return self.approval_url_builder(review) if self.approval_url_builder else None
