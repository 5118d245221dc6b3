"""Keyed locks behind a small interface: in-process now, Redis when scaled out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol


class LockManager(Protocol):
    """Mutual exclusion per key (e.g. one OAuth refresh per credential)."""

    def hold(self, key: str, *, timeout: float = 30.0) -> AbstractAsyncContextManager[None]:
        """Hold the lock for *key*; waiting longer than *timeout* raises TimeoutError."""
        ...


class InProcessLockManager:
    """Per-process keyed asyncio locks; unused locks are dropped so memory stays bounded."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str, *, timeout: float = 30.0) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            await asyncio.wait_for(lock.acquire(), timeout)
            try:
                yield
            finally:
                lock.release()
        finally:
            self._waiters[key] -= 1
            if self._waiters[key] == 0:
                del self._waiters[key]
                self._locks.pop(key, None)
