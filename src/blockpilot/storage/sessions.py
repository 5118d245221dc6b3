"""Chat sessions: one user's conversation; never usable by another user."""

from __future__ import annotations

import secrets
import sqlite3
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from blockpilot.storage.common import aware, utcnow
from blockpilot.storage.sqlite_writer import SQLiteWriter, bind_processors, engine_writer
from blockpilot.storage.tables import chat_sessions

_COLUMNS = ("id", "user_id", "created_at", "updated_at")


@dataclass(frozen=True, slots=True)
class ChatSession:
    session_id: str
    user_id: str
    created_at: datetime


class SessionStore:
    """Sessions by id, scoped to their owner.

    Ownership never changes, so it is cached in-process: most tool calls then cost no
    database round trip for the session check.

    A new session is one small row and nothing else (its workspace is the user's, made when
    first written). On a SQLite file the row is committed through the engine's
    :class:`~blockpilot.storage.sqlite_writer.SQLiteWriter`, the one the execution records
    use (~20 µs, never waiting for a lock on the event loop), instead of SQLAlchemy +
    aiosqlite (~1 ms, and it contended with the execution writer for the write lock): a
    client that sends no session id makes one per call (docs/performance.md).
    """

    def __init__(self, engine: AsyncEngine, cache_size: int = 10_000) -> None:
        self._engine = engine
        # Oldest first, evicted in O(1): a dict's next(iter()) rescans the slots its evictions
        # emptied at the front: 1.6-2.2 µs per new session at 10,000 cached (docs/performance.md).
        self._owner_cache: OrderedDict[str, ChatSession] = OrderedDict()
        self._cache_size = cache_size
        self._writer = _sqlite_writer(engine)

    def _remember(self, session: ChatSession) -> ChatSession:
        if len(self._owner_cache) >= self._cache_size:
            self._owner_cache.popitem(last=False)
        self._owner_cache[session.session_id] = session
        return session

    async def create(self, user_id: str) -> ChatSession:
        """A new session of *user_id*, committed before it is returned.

        Raises:
            IntegrityError: No such user.
        """
        now = utcnow()
        session = ChatSession(session_id=secrets.token_hex(16), user_id=user_id, created_at=now)
        if self._writer is not None:
            params = {"id": session.session_id, "user_id": user_id}
            try:
                await self._writer.write("create", {**params, "created_at": now, "updated_at": now})
            except sqlite3.IntegrityError as exc:  # the engine path's error, for callers
                raise IntegrityError("INSERT INTO chat_sessions", params, exc) from None
            return self._remember(session)
        async with self._engine.begin() as conn:
            await conn.execute(
                chat_sessions.insert().values(
                    id=session.session_id, user_id=user_id, created_at=now, updated_at=now
                )
            )
        return self._remember(session)

    async def close(self) -> None:
        """Release the direct writer (the store stays usable)."""
        if self._writer is not None:
            await self._writer.close()

    async def get(self, user_id: str, session_id: str) -> ChatSession | None:
        """The session if it exists and belongs to *user_id*; otherwise None."""
        cached = self._owner_cache.get(session_id)
        if cached is not None:
            return cached if cached.user_id == user_id else None
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(chat_sessions).where(chat_sessions.c.id == session_id))
            ).first()
        if row is None:
            return None
        session = self._remember(
            ChatSession(row.id, row.user_id, aware(row.created_at) or utcnow())
        )
        return session if session.user_id == user_id else None

    async def list(self, user_id: str, limit: int = 100) -> list[ChatSession]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(chat_sessions)
                    .where(chat_sessions.c.user_id == user_id)
                    .order_by(chat_sessions.c.created_at.desc())
                    .limit(limit)
                )
            ).all()
        return [ChatSession(r.id, r.user_id, aware(r.created_at) or utcnow()) for r in rows]


def _sqlite_writer(engine: AsyncEngine) -> SQLiteWriter | None:
    names = ", ".join(_COLUMNS)
    values = ", ".join(f":{c}" for c in _COLUMNS)
    return engine_writer(
        engine,
        {"create": f"INSERT INTO {chat_sessions.name} ({names}) VALUES ({values})"},
        {"create": bind_processors(chat_sessions, engine.dialect, {c: c for c in _COLUMNS})},
    )
