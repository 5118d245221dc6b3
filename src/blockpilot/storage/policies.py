"""Per-user policy rules (docs/approvals.md); every query is scoped by the user id."""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
from typing import Any

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from blockpilot.approvals.policy import Decision, PolicyRule, Selector
from blockpilot.storage.common import utcnow
from blockpilot.storage.sqlite_writer import SQLiteReader, sqlite_file
from blockpilot.storage.tables import policy_rules

_RULE_COLUMNS = ("id", "user_id", "session_id", "selector", "value", "decision", "api_key_id")
_Row = collections.namedtuple("_Row", _RULE_COLUMNS)  # type: ignore[misc]
_RULES_SQL = (
    f"SELECT {', '.join(_RULE_COLUMNS)} FROM {policy_rules.name} "
    "WHERE user_id = ? ORDER BY created_at"
)


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


def _same_target(rule: PolicyRule) -> ColumnElement[bool]:
    """Rows naming what *rule* names, for the same user, session and API key."""
    return (
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


class PolicyStore:
    """Rules a user (or an operator for a user) added to narrow the operator's policy.

    Every run_block reads its user's rules, so they are cached per process for
    ``cache_seconds``: a change made through this process applies at once, one made through
    another process within that time (docs/approvals.md).

    When the cached rules expire, concurrent calls of the same user share one read (under
    load, every call in flight used to read them again, each through the connection pool),
    and on a SQLite file that read is made directly (docs/performance.md).
    """

    def __init__(self, engine: AsyncEngine, cache_seconds: float = 1.0) -> None:
        self._engine = engine
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, list[PolicyRule]]] = {}
        # The read in flight per user, and a count of this process's changes: a read that
        # overlapped a change is neither shared with later callers nor cached.
        self._loading: dict[str, asyncio.Future[list[PolicyRule]]] = {}
        self._changes = 0
        path = sqlite_file(engine)
        self._reader = None if path is None else SQLiteReader(path)

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
        async with self._engine.begin() as conn:
            await conn.execute(delete(policy_rules).where(_same_target(rule)))
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
        self._changed(rule.user_id)
        return stored

    def _changed(self, user_id: str) -> None:
        self._changes += 1
        self._cache.pop(user_id, None)
        self._loading.pop(user_id, None)  # later callers read again, after the change

    async def for_user(self, user_id: str) -> list[PolicyRule]:
        now = time.monotonic()
        cached = self._cache.get(user_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        loop = asyncio.get_running_loop()
        pending = self._loading.get(user_id)
        if pending is not None and pending.get_loop() is loop:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise  # this call was cancelled, not the read it waited for
            # The read it shared failed or was cancelled: read on its own, below.
        pending = self._loading[user_id] = loop.create_future()
        changes = self._changes
        try:
            rules = await self._load(user_id)
        except BaseException:
            if self._loading.get(user_id) is pending:
                del self._loading[user_id]
            pending.cancel()  # whoever waited reads on its own (and meets its own error)
            raise
        if self._loading.get(user_id) is pending:
            del self._loading[user_id]
        pending.set_result(rules)
        if changes == self._changes:
            if len(self._cache) >= 10_000:
                self._cache.clear()
            self._cache[user_id] = (now + self._cache_seconds, rules)
        return rules

    async def _load(self, user_id: str) -> list[PolicyRule]:
        if self._reader is not None:
            found = self._reader.fetch_all(_RULES_SQL, (user_id,))
            if found is not SQLiteReader.UNAVAILABLE:
                return [_rule(_Row(*raw)) for raw in found]
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(policy_rules)
                    .where(policy_rules.c.user_id == user_id)
                    .order_by(policy_rules.c.created_at)
                )
            ).all()
        return [_rule(r) for r in rows]

    def close(self) -> None:
        """Release the direct reader's connection (it reconnects on the next read)."""
        if self._reader is not None:
            self._reader.close()

    async def get(self, user_id: str, rule_id: str) -> PolicyRule | None:
        """One of *user_id*'s rules, or None."""
        return next((r for r in await self._load(user_id) if r.id == rule_id), None)

    async def replaced_by(self, rule: PolicyRule) -> PolicyRule | None:
        """The stored rule that :meth:`add` of *rule* would replace (same target), if any."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(policy_rules).where(_same_target(rule)))).first()
        return None if row is None else _rule(row)

    async def remove(self, user_id: str, rule_id: str) -> bool:
        self._changed(user_id)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(policy_rules).where(
                    (policy_rules.c.user_id == user_id) & (policy_rules.c.id == rule_id)
                )
            )
        self._changed(user_id)
        return bool(result.rowcount)
