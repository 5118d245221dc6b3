"""Idempotency keys: the first run_block call with a key claims it (docs/approvals.md).

The claim is an INSERT on the (user, key) primary key, so of any number of concurrent
calls, in any number of processes, exactly one wins; the others read the winner's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from blockpilot.storage.common import aware, storable, utcnow
from blockpilot.storage.tables import executions, idempotency_keys, process_leases

RUNNING, DONE = "running", "done"


@dataclass(frozen=True, slots=True)
class IdempotencyEntry:
    key: str
    digest: str
    status: str
    execution_id: str | None
    instance_id: str | None
    response: dict[str, Any] | None
    created_at: datetime
    execution_status: str | None = None  # the linked execution record's status, if any
    claimer_alive: bool = True  # the claiming process's lease is not long expired


class IdempotencyStore:
    """Claims of idempotency keys.

    Args:
        engine: The database.
        dead_after_seconds: How long past its lease's expiry a claiming process is taken
            for gone. More than the lease itself: a busy process may renew late, and
            taking the claim of a live process over would let the call run twice (the
            fence in :meth:`begin_run` stops that, but the live one then waits).
    """

    def __init__(self, engine: AsyncEngine, dead_after_seconds: float = 60.0) -> None:
        self._engine = engine
        self._dead_after = timedelta(seconds=dead_after_seconds)

    async def claim(
        self, user_id: str, key: str, digest: str, instance_id: str
    ) -> IdempotencyEntry | None:
        """None if this call now owns *key*; otherwise the entry of the call that does."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    idempotency_keys.insert().values(
                        user_id=user_id,
                        key=key,
                        digest=digest,
                        status=RUNNING,
                        instance_id=instance_id,
                        created_at=utcnow(),
                    )
                )
            return None
        except IntegrityError:
            entry = await self.get(user_id, key)
            if entry is None:  # deleted with its user in between: nothing to replay
                raise
            return entry

    async def get(self, user_id: str, key: str) -> IdempotencyEntry | None:
        query = (
            select(
                idempotency_keys,
                executions.c.status.label("execution_status"),
                process_leases.c.instance_id.label("live_instance"),
            )
            .select_from(
                idempotency_keys.outerjoin(
                    executions,
                    (executions.c.id == idempotency_keys.c.execution_id)
                    & (executions.c.user_id == idempotency_keys.c.user_id),
                ).outerjoin(
                    process_leases,
                    (process_leases.c.instance_id == idempotency_keys.c.instance_id)
                    & (process_leases.c.expires_at > utcnow() - self._dead_after),
                )
            )
            .where((idempotency_keys.c.user_id == user_id) & (idempotency_keys.c.key == key))
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return IdempotencyEntry(
            key=row.key,
            digest=row.digest,
            status=row.status,
            execution_id=row.execution_id,
            instance_id=row.instance_id,
            response=row.response,
            created_at=aware(row.created_at) or utcnow(),
            execution_status=row.execution_status,
            claimer_alive=row.live_instance is not None,
        )

    async def begin_run(self, user_id: str, key: str, instance_id: str, execution_id: str) -> bool:
        """Record that the claim's run starts now; False if this process lost the claim.

        The fence for at-most-once: of the claimer and a process that took the claim over
        (believing the claimer dead), only the one whose conditional UPDATE sets the
        execution id may run the block.
        """
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(idempotency_keys)
                .where(
                    (idempotency_keys.c.user_id == user_id)
                    & (idempotency_keys.c.key == key)
                    & (idempotency_keys.c.instance_id == instance_id)
                    & idempotency_keys.c.execution_id.is_(None)
                )
                .values(execution_id=execution_id)
            )
        return bool(result.rowcount)

    async def take_over(self, user_id: str, key: str, dead_instance: str, instance_id: str) -> bool:
        """Take the claim of a process that is gone and had not started the run yet."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(idempotency_keys)
                .where(
                    (idempotency_keys.c.user_id == user_id)
                    & (idempotency_keys.c.key == key)
                    & (idempotency_keys.c.instance_id == dead_instance)
                    & (idempotency_keys.c.status == RUNNING)
                    & idempotency_keys.c.execution_id.is_(None)
                )
                .values(instance_id=instance_id)
            )
        return bool(result.rowcount)

    async def finish(
        self, user_id: str, key: str, execution_id: str | None, response: dict[str, Any]
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(idempotency_keys)
                .where((idempotency_keys.c.user_id == user_id) & (idempotency_keys.c.key == key))
                .values(
                    status=DONE,
                    execution_id=execution_id,
                    response=storable(response),
                    finished_at=utcnow(),
                )
            )

    async def release(self, user_id: str, key: str, instance_id: str) -> None:
        """Forget this process's claim whose call ran nothing (refused before any side
        effect), so the next call with the key may run."""
        async with self._engine.begin() as conn:
            await conn.execute(
                idempotency_keys.delete().where(
                    (idempotency_keys.c.user_id == user_id)
                    & (idempotency_keys.c.key == key)
                    & (idempotency_keys.c.status == RUNNING)
                    & (idempotency_keys.c.instance_id == instance_id)
                )
            )

    async def response_for(self, user_id: str, execution_id: str) -> dict[str, Any] | None:
        """The kept response of the idempotent call that led to *execution_id*, if any."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(idempotency_keys.c.response).where(
                        (idempotency_keys.c.user_id == user_id)
                        & (idempotency_keys.c.execution_id == execution_id)
                    )
                )
            ).first()
        return row.response if row is not None else None
