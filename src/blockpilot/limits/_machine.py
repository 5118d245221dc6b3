"""The API's per-user limits shared by the workers of one machine, in a small SQLite file.

For ``blockpilot serve --workers N`` without Redis. Same interface and semantics as
:class:`~blockpilot.limits.InProcessRateLimiter`; the state lives in
``BLOCKPILOT_HOME/run/limits.sqlite3``, so a user's budget and tool-call cap hold for the
whole machine, not per worker:

* **Rate**: one row per recently active user (tokens, as of when), refilled and spent by a
  single ``INSERT … ON CONFLICT DO UPDATE … RETURNING``, so two workers can never both
  spend the last token. Wall-clock seconds: the file outlives a server.
* **Concurrency**: one row per tool call in flight, naming the worker that holds it. A
  worker that dies cannot release its rows; when a user is at the cap, the rows of workers
  that are gone (:meth:`blockpilot.workers.Worker.is_alive`, a lock the kernel released) are
  deleted first, so a crash never costs a user a slot.

The file is not durable on purpose (``synchronous=OFF``, WAL): losing it to a power cut
only refills everybody's budget. The event loop never waits for SQLite's lock: a busy
database is retried after a short sleep. If the file cannot be used at all, each worker
falls back to its own in-process limits (logged once), like the Redis limiter: limits never
fail closed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from blockpilot.limits._memory import (
    WINDOW_SECONDS,
    Decision,
    InProcessRateLimiter,
    too_many_in_flight,
)
from blockpilot.settings import Settings
from blockpilot.workers import Worker

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

FILE_NAME = "limits.sqlite3"
_BUSY_RETRY_SECONDS = 0.0005
_BUSY_GIVE_UP_SECONDS = 5.0
_RELEASE_BUSY_TIMEOUT_MS = 2_000

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rate_buckets (user_id TEXT PRIMARY KEY, tokens REAL NOT NULL,"
    " at REAL NOT NULL, allowed INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS run_slots (slot TEXT PRIMARY KEY, user_id TEXT NOT NULL,"
    " worker TEXT NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS run_slots_user ON run_slots (user_id)",
)

# The refilled balance is computed from the row's old values; SQLite evaluates every SET
# expression against the row as it was.
_TAKE_TOKEN = """
INSERT INTO rate_buckets (user_id, tokens, at, allowed) VALUES (:user, :capacity - 1, :now, 1)
ON CONFLICT (user_id) DO UPDATE SET
  tokens = min(:capacity, tokens + max(0, :now - at) * :rate)
           - (min(:capacity, tokens + max(0, :now - at) * :rate) >= 1),
  allowed = min(:capacity, tokens + max(0, :now - at) * :rate) >= 1,
  at = :now
RETURNING tokens, allowed
"""
_TAKE_SLOT = """
INSERT INTO run_slots (slot, user_id, worker) SELECT :slot, :user, :worker
WHERE (SELECT count(*) FROM run_slots WHERE user_id = :user) < :max
"""


class MachineRateLimiter:
    """A :class:`~blockpilot.limits.RateLimiter` shared by the workers of one machine.

    Args:
        per_minute: Requests per user per minute; 0 turns the rate limit off.
        max_concurrent: Tool calls one user may have in flight on this machine; 0 = no cap.
        worker: This process as a worker (slot rows name it; others' liveness is checked).
        path: The SQLite file (default ``worker.run_folder / "limits.sqlite3"``).
        clock: Wall-clock seconds (tests may pass their own).
    """

    def __init__(
        self,
        per_minute: int,
        max_concurrent: int,
        *,
        worker: Worker,
        path: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if per_minute < 0 or max_concurrent < 0:
            raise ValueError("limits must be >= 0 (0 means no limit)")
        self.per_minute = per_minute
        self.max_concurrent = max_concurrent
        self.path = path or worker.run_folder / FILE_NAME
        self._worker = worker
        self._clock = clock
        self._fallback = InProcessRateLimiter(per_minute, max_concurrent)
        self._next_prune = 0.0
        self.degraded = False
        self._db = self._open()

    @classmethod
    def from_settings(cls, settings: Settings, worker: Worker) -> MachineRateLimiter:
        """``BLOCKPILOT_RATE_LIMIT_PER_MINUTE`` and ``BLOCKPILOT_MAX_CONCURRENT_RUNS_PER_USER``."""
        return cls(
            settings.rate_limit_per_minute, settings.max_concurrent_runs_per_user, worker=worker
        )

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self.path.chmod(0o600)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        for statement in _SCHEMA:
            db.execute(statement)
        db.execute("PRAGMA busy_timeout=0")  # from now on: retried without blocking the loop
        return db

    def close(self) -> None:
        self._db.close()

    async def acquire(self, user_id: str) -> Decision:
        if self.per_minute == 0:
            return Decision(True)
        now = self._clock()
        params = {
            "user": user_id,
            "capacity": float(self.per_minute),
            "rate": self.per_minute / WINDOW_SECONDS,
            "now": now,
        }
        try:
            row = await self._retry(lambda: self._db.execute(_TAKE_TOKEN, params).fetchone())
            if now >= self._next_prune:
                self._next_prune = now + WINDOW_SECONDS
                # A bucket untouched for a window is full again: the same as no row.
                cutoff = now - WINDOW_SECONDS
                await self._retry(
                    lambda: self._db.execute("DELETE FROM rate_buckets WHERE at < ?", (cutoff,))
                )
        except sqlite3.Error as exc:
            self._failed(exc)
            return await self._fallback.acquire(user_id)
        self._ok()
        tokens, allowed = row
        if allowed:
            return Decision(True)
        return Decision(False, retry_after=(1.0 - tokens) / params["rate"])

    @asynccontextmanager
    async def concurrency(self, user_id: str) -> AsyncIterator[None]:
        if self.max_concurrent == 0:
            yield
            return
        slot = secrets.token_hex(12)
        try:
            taken = await self._take_slot(slot, user_id)
        except sqlite3.Error as exc:
            self._failed(exc)
            async with self._fallback.concurrency(user_id):
                yield
            return
        self._ok()
        if not taken:
            raise too_many_in_flight(self.max_concurrent)
        try:
            yield
        finally:
            self._release(slot)

    async def running(self, user_id: str) -> int:
        """Tool calls of *user_id* in flight now on this machine (gone workers' included
        until a call at the cap removes them)."""
        row = self._db.execute(
            "SELECT count(*) FROM run_slots WHERE user_id = ?", (user_id,)
        ).fetchone()
        return int(row[0])

    async def _take_slot(self, slot: str, user_id: str) -> bool:
        params: dict[str, str | int] = {
            "slot": slot,
            "user": user_id,
            "worker": self._worker.id,
            "max": self.max_concurrent,
        }
        if await self._retry(lambda: self._db.execute(_TAKE_SLOT, params).rowcount) == 1:
            return True
        holders = self._db.execute(
            "SELECT DISTINCT worker FROM run_slots WHERE user_id = ?", (user_id,)
        ).fetchall()
        gone = [worker for (worker,) in holders if not self._worker.is_alive(worker)]
        if not gone:
            return False
        logger.info("freeing the tool-call slots of stopped workers", extra={"workers": gone})
        marks = ", ".join("?" * len(gone))
        await self._retry(
            lambda: self._db.execute(f"DELETE FROM run_slots WHERE worker IN ({marks})", gone)
        )
        return await self._retry(lambda: self._db.execute(_TAKE_SLOT, params).rowcount) == 1

    def _release(self, slot: str) -> None:
        """Free *slot* now, even in a cancelled task (no await): waits up to 2 s for the
        lock, which other workers hold for microseconds."""
        try:
            self._db.execute(f"PRAGMA busy_timeout={_RELEASE_BUSY_TIMEOUT_MS}")
            try:
                self._db.execute("DELETE FROM run_slots WHERE slot = ?", (slot,))
            finally:
                self._db.execute("PRAGMA busy_timeout=0")
        except sqlite3.Error as exc:  # the slot stays taken until this worker stops
            logger.warning("could not free a tool-call slot: %s", exc)

    async def _retry(self, statement: Callable[[], _T]) -> _T:
        deadline = time.monotonic() + _BUSY_GIVE_UP_SECONDS
        while True:
            try:
                return statement()
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(_BUSY_RETRY_SECONDS)

    def _failed(self, exc: BaseException) -> None:
        if not self.degraded:
            logger.warning(
                "the shared limits file is unusable (%s): rate limits and tool-call caps are "
                "enforced per worker until it works again",
                type(exc).__name__,
            )
        self.degraded = True

    def _ok(self) -> None:
        if self.degraded:
            logger.info("the shared limits file works again: limits are shared by the workers")
        self.degraded = False
