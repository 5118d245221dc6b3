"""Setup links work once: the first credential a link stores uses it up (``docs/oauth.md``).

A link is *claimed* just before its credential is stored (an insert of the link's SHA-256,
which only one request can win) and *released* again if storing fails, so a typo in a form
does not burn the link, and two concurrent submissions store one credential. Rows go when
the link itself would have expired.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from blockpilot.storage.common import utcnow
from blockpilot.storage.tables import setup_link_uses as table


def hash_link(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


class SetupLinkUses:
    """The ``setup_link_uses`` table.

    Args:
        engine: The database.
        clock: Seconds since the epoch.
    """

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self.clock = clock

    async def used(self, link_hash: str) -> bool:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(table.c.link_hash).where(table.c.link_hash == link_hash))
            ).first()
        return row is not None

    async def claim(self, link_hash: str, user_id: str, expires_at: float) -> bool:
        """Mark the link used; False if it already was."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(delete(table).where(table.c.expires_at < self.clock()))
                await conn.execute(
                    table.insert().values(
                        link_hash=link_hash,
                        user_id=user_id,
                        used_at=utcnow(),
                        expires_at=expires_at,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def release(self, link_hash: str) -> None:
        """Undo a claim whose credential could not be stored."""
        async with self._engine.begin() as conn:
            await conn.execute(delete(table).where(table.c.link_hash == link_hash))
