"""Keyed locks shared by the processes of one machine: ``flock`` on one file per key.

For ``blockpilot serve --workers N`` without Redis: the workers share one home, so a lock
file there excludes all of them (an OAuth refresh of a rotating token must happen once, not
once per worker). The kernel releases a lock when its holder dies, so a killed worker never
leaves one behind. No fencing tokens (a lock cannot be lost while its holder lives);
several machines need :class:`blockpilot.redis_locks.RedisLockManager`
(docs/deployment.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from blockpilot.locks import InProcessLockManager, LocalLease

_POLL_SECONDS = 0.01


class FileLockManager:
    """Per-key exclusive ``flock`` locks in *directory* (created 0700 on first use)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        # Tasks of this process queue here first, so only one of them polls the file.
        self._local = InProcessLockManager()

    def _path(self, key: str) -> Path:
        return self._directory / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock")

    @asynccontextmanager
    async def hold(self, key: str, *, timeout: float = 30.0) -> AsyncIterator[LocalLease]:
        deadline = time.monotonic() + timeout
        async with self._local.hold(key, timeout=timeout):
            self._directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self._path(key), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise TimeoutError(f"lock {key!r} is held by another process") from None
                        await asyncio.sleep(_POLL_SECONDS)
                try:
                    yield LocalLease(key)
                finally:
                    with contextlib.suppress(OSError):
                        fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    async def aclose(self) -> None:
        return None
