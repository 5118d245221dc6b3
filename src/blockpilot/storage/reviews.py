"""Reviews: run_block calls that wait for a person's decision (docs/approvals.md).

Every query is scoped by the user id; a review of another user is 'not found'. State
changes are single conditional UPDATEs, so two processes deciding or consuming the same
review cannot both win.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from blockpilot.storage.common import aware, storable, utcnow
from blockpilot.storage.tables import reviews

PENDING, APPROVED, REJECTED, USED, EXPIRED = "pending", "approved", "rejected", "used", "expired"


@dataclass(slots=True)
class Review:
    id: str
    user_id: str
    session_id: str
    block_id: str
    block_name: str
    effect: str
    digest: str
    input_data: dict[str, Any]
    credential_ids: list[str]
    rule: str
    status: str
    created_at: datetime
    expires_at: datetime
    reason: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    execution_id: str | None = None

    def current_status(self, now: datetime | None = None) -> str:
        """The status, reading a pending or approved review past its expiry as expired."""
        if self.status in (PENDING, APPROVED) and (now or utcnow()) >= self.expires_at:
            return EXPIRED
        return self.status

    def public(self) -> dict[str, Any]:
        return {
            "review_id": self.id,
            "block_id": self.block_id,
            "block_name": self.block_name,
            "effect": self.effect,
            "input_data": self.input_data,
            "credential_ids": self.credential_ids,
            "rule": self.rule,
            "status": self.current_status(),
            "reason": self.reason,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "execution_id": self.execution_id,
            "session_id": self.session_id,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }


def _review(row: Any) -> Review:
    return Review(
        id=row.id,
        user_id=row.user_id,
        session_id=row.session_id,
        block_id=row.block_id,
        block_name=row.block_name,
        effect=row.effect,
        digest=row.digest,
        input_data=row.input_data,
        credential_ids=list(row.credential_ids),
        rule=row.rule,
        status=row.status,
        created_at=aware(row.created_at) or utcnow(),
        expires_at=aware(row.expires_at) or utcnow(),
        reason=row.reason,
        decided_by=row.decided_by,
        decided_at=aware(row.decided_at),
        execution_id=row.execution_id,
    )


class ReviewStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self,
        *,
        user_id: str,
        session_id: str,
        block_id: str,
        block_name: str,
        effect: str,
        digest: str,
        input_data: dict[str, Any],
        credential_ids: list[str],
        rule: str,
        ttl_seconds: float,
    ) -> Review:
        now = utcnow()
        review = Review(
            id=str(uuid.uuid4()),
            user_id=user_id,
            session_id=session_id,
            block_id=block_id,
            block_name=block_name,
            effect=effect,
            digest=digest,
            input_data=storable(input_data),
            credential_ids=credential_ids,
            rule=rule[:300],
            status=PENDING,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
        async with self._engine.begin() as conn:
            await conn.execute(
                reviews.insert().values(
                    id=review.id,
                    user_id=user_id,
                    session_id=session_id,
                    block_id=block_id,
                    block_name=block_name[:200],
                    effect=effect,
                    digest=digest,
                    input_data=review.input_data,
                    credential_ids=credential_ids,
                    rule=review.rule,
                    status=PENDING,
                    created_at=now,
                    expires_at=review.expires_at,
                )
            )
        return review

    async def get(self, user_id: str, review_id: str) -> Review | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(reviews).where(
                        (reviews.c.user_id == user_id) & (reviews.c.id == review_id)
                    )
                )
            ).first()
        return _review(row) if row is not None else None

    async def find(self, review_id: str) -> Review | None:
        """A review by id alone: for the operator's local CLI only, never a user's door."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(reviews).where(reviews.c.id == review_id))).first()
        return _review(row) if row is not None else None

    async def latest_for_digest(self, user_id: str, digest: str) -> Review | None:
        """The newest review of exactly this call (same user, block, inputs, credentials)."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(reviews)
                    .where((reviews.c.user_id == user_id) & (reviews.c.digest == digest))
                    .order_by(reviews.c.created_at.desc())
                    .limit(1)
                )
            ).first()
        return _review(row) if row is not None else None

    async def list(
        self, user_id: str, *, status: str | None = None, limit: int = 100
    ) -> list[Review]:
        query = select(reviews).where(reviews.c.user_id == user_id)
        if status is not None:
            query = query.where(reviews.c.status == status)
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(query.order_by(reviews.c.created_at.desc()).limit(limit))
            ).all()
        return [_review(r) for r in rows]

    async def decide(
        self, user_id: str, review_id: str, *, approve: bool, by: str, reason: str | None
    ) -> bool:
        """Approve or reject a pending, unexpired review; False if it was not pending."""
        now = utcnow()
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(reviews)
                .where(
                    (reviews.c.user_id == user_id)
                    & (reviews.c.id == review_id)
                    & (reviews.c.status == PENDING)
                    & (reviews.c.expires_at > now)
                )
                .values(
                    status=APPROVED if approve else REJECTED,
                    decided_by=by[:200],
                    decided_at=now,
                    reason=reason,
                )
            )
        return bool(result.rowcount)

    async def consume(self, user_id: str, review_id: str, execution_id: str) -> bool:
        """Use an approval once: approved → used, naming the execution it led to."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(reviews)
                .where(
                    (reviews.c.user_id == user_id)
                    & (reviews.c.id == review_id)
                    & (reviews.c.status == APPROVED)
                    & (reviews.c.expires_at > utcnow())
                )
                .values(status=USED, execution_id=execution_id)
            )
        return bool(result.rowcount)
