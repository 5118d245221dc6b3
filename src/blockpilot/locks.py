"""Keyed locks behind a small interface: in-process by default, Redis when scaled out.

A held lock is a :class:`Lease`. In one process a lease cannot be lost, but a lock shared by
several processes (:class:`blockpilot.redis_locks.RedisLockManager`) is a lease with a time
limit: a holder that stalls (a long pause, a network cut) can lose it while it still thinks
it holds it. So work that must not be done twice checks :meth:`Lease.verify` right before
it commits, and passes :attr:`Lease.fencing_token` to the write so that the database itself
refuses a write from an older lease than the last one stored (see ``credentials.manager``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol


class Lease(Protocol):
    """A held lock."""

    @property
    def key(self) -> str: ...

    @property
    def fencing_token(self) -> int | None:
        """Grows with every acquisition of the key across all processes; None without fencing."""
        ...

    async def verify(self) -> None:
        """Raise :class:`~blockpilot.errors.LeaseLostError` unless this lease is still held."""
        ...


class LockManager(Protocol):
    """Mutual exclusion per key (e.g. one OAuth refresh per credential)."""

    def hold(self, key: str, *, timeout: float = 30.0) -> AbstractAsyncContextManager[Lease]:
        """Hold the lock for *key*.

        Raises:
            TimeoutError: Waited longer than *timeout* for another holder.
            LockUnavailableError: The lock service cannot be reached (shared locks only).
        """
        ...

    async def aclose(self) -> None:
        """Release connections (and any lease still held)."""
        ...


class LocalLease:
    """A lease of :class:`InProcessLockManager`: held until released, no fencing."""

    __slots__ = ("key",)
    fencing_token: int | None = None

    def __init__(self, key: str) -> None:
        self.key = key

    async def verify(self) -> None:
        return None


class InProcessLockManager:
    """Per-process keyed asyncio locks; unused locks are dropped so memory stays bounded."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str, *, timeout: float = 30.0) -> AsyncIterator[LocalLease]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            await asyncio.wait_for(lock.acquire(), timeout)
            try:
                yield LocalLease(key)
            finally:
                lock.release()
        finally:
            self._waiters[key] -= 1
            if self._waiters[key] == 0:
                del self._waiters[key]
                self._locks.pop(key, None)

    async def aclose(self) -> None:
        return None
