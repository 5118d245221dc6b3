"""Per-user policy rules (docs/approvals.md); every query is scoped by the user id."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from blockpilot.approvals.policy import Decision, PolicyRule, Selector
from blockpilot.storage.common import utcnow
from blockpilot.storage.tables import policy_rules


def _rule(row: Any) -> PolicyRule:
    decision = row.decision
    return PolicyRule(
        selector=Selector(row.selector),
        value=row.value,
        decision=None if decision == "dry_run" else Decision(decision),
        user_id=row.user_id,
        session_id=row.session_id,
        id=row.id,
        api_key_id=row.api_key_id,
    )


class PolicyStore:
    """Rules a user (or an operator for a user) added to narrow the operator's policy.

    Every run_block reads its user's rules, so they are cached per process for
    ``cache_seconds``: a change made through this process applies at once, one made through
    another process within that time (docs/approvals.md).
    """

    def __init__(self, engine: AsyncEngine, cache_seconds: float = 1.0) -> None:
        self._engine = engine
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, list[PolicyRule]]] = {}

    async def add(self, rule: PolicyRule) -> PolicyRule:
        """Store *rule* (its ``user_id`` must be set); a rule with the same target replaces
        the older one, so setting a decision twice keeps the last."""
        assert rule.user_id is not None
        stored = PolicyRule(
            rule.selector,
            rule.value,
            rule.decision,
            rule.user_id,
            rule.session_id,
            str(uuid.uuid4()),
            rule.api_key_id,
        )
        same = (
            (policy_rules.c.user_id == rule.user_id)
            & (policy_rules.c.selector == rule.selector.value)
            & (policy_rules.c.value == rule.value)
            & (
                policy_rules.c.session_id.is_(None)
                if rule.session_id is None
                else policy_rules.c.session_id == rule.session_id
            )
            & (
                policy_rules.c.api_key_id.is_(None)
                if rule.api_key_id is None
                else policy_rules.c.api_key_id == rule.api_key_id
            )
        )
        async with self._engine.begin() as conn:
            await conn.execute(delete(policy_rules).where(same))
            await conn.execute(
                policy_rules.insert().values(
                    id=stored.id,
                    user_id=rule.user_id,
                    session_id=rule.session_id,
                    api_key_id=rule.api_key_id,
                    selector=rule.selector.value,
                    value=rule.value,
                    decision=rule.decision.value if rule.decision is not None else "dry_run",
                    created_at=utcnow(),
                )
            )
        self._cache.pop(rule.user_id, None)
        return stored

    async def for_user(self, user_id: str) -> list[PolicyRule]:
        now = time.monotonic()
        cached = self._cache.get(user_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        rules = await self._load(user_id)
        if len(self._cache) >= 10_000:
            self._cache.clear()
        self._cache[user_id] = (now + self._cache_seconds, rules)
        return rules

    async def _load(self, user_id: str) -> list[PolicyRule]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(policy_rules)
                    .where(policy_rules.c.user_id == user_id)
                    .order_by(policy_rules.c.created_at)
                )
            ).all()
        return [_rule(r) for r in rows]

    async def get(self, user_id: str, rule_id: str) -> PolicyRule | None:
        """One of *user_id*'s rules, or None."""
        return next((r for r in await self._load(user_id) if r.id == rule_id), None)

    async def remove(self, user_id: str, rule_id: str) -> bool:
        self._cache.pop(user_id, None)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(policy_rules).where(
                    (policy_rules.c.user_id == user_id) & (policy_rules.c.id == rule_id)
                )
            )
        return bool(result.rowcount)
