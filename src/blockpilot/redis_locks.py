"""Locks shared by every blockpilot process: Redis leases with renewal and fencing tokens.

Used when ``BLOCKPILOT_REDIS_URL`` is set. How a lease works:

* **Acquire**: ``SET <key> <owner> NX PX <ttl>`` in a Lua script that, on success, also
  increments the key's fencing counter and returns it. The counter never goes below the
  Redis server's clock in milliseconds, so it keeps growing even if Redis loses its data
  (restart without persistence) and starts counting again.
* **Hold**: a watchdog task renews the lease every ``ttl / 3`` (compare-and-``PEXPIRE``), so
  a slow holder (an OAuth provider taking longer than the ttl to answer) keeps its lease
  as long as it is alive; a holder that dies loses it after at most ``ttl``.
* **Verify** (:meth:`RedisLease.verify`, before committing): the lease is still within its
  time as last confirmed by Redis (monotonic clock) and, if Redis can be asked, still ours.
  Together with the fencing token given to the database write this is what makes a stalled
  holder unable to overwrite a newer holder's result.
* **Release**: compare-and-delete, so a holder whose lease ran out never deletes the lock
  of whoever holds it now.

Within one process, callers of the same key first queue on an in-process lock, so fifty
concurrent requests cost one Redis lease at a time, not fifty pollers.

Redis down: :meth:`RedisLockManager.hold` raises
:class:`~blockpilot.errors.LockUnavailableError` at once (it never pretends to hold a lock);
each caller decides what that means for its feature.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from blockpilot.errors import LeaseLostError, LockUnavailableError
from blockpilot.locks import InProcessLockManager

logger = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_LEASE_SECONDS = 30.0
KEY_PREFIX = "blockpilot:lock:"
FENCE_SUFFIX = ":fence"
# Fencing counters outlive their locks by this much; if one expires, the clock floor still
# keeps the next token above every earlier one.
FENCE_TTL_MS = 7 * 24 * 3600 * 1000
# How much of the lease verify() keeps in reserve for the commit that follows it.
_VERIFY_MARGIN = 0.2

_ACQUIRE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  -- ours already: an earlier attempt succeeded but its answer was lost (retried after a timeout)
  return tonumber(redis.call('GET', KEYS[2]))
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local now = redis.call('TIME')
  local floor = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  local token = redis.call('INCR', KEYS[2])
  if token < floor then
    token = floor
    redis.call('SET', KEYS[2], string.format('%d', floor))
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return token
end
return 0
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

_CHECK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(redis.call('GET', KEYS[2]) or '0') ~= tonumber(ARGV[2]) then return 0 end
return 1
"""


def redis_client(url: str) -> Any:
    """A ``redis.asyncio`` client with short timeouts: a Redis that is down fails fast."""
    try:
        import redis.asyncio as redis_asyncio
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as exc:  # pragma: no cover - redis is a dependency
        from blockpilot.errors import ConfigurationError

        raise ConfigurationError(
            "BLOCKPILOT_REDIS_URL is set but the redis package is not installed"
        ) from exc
    return redis_asyncio.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        retry=Retry(NoBackoff(), retries=0),  # call_redis retries once, at once
        health_check_interval=10,
        decode_responses=False,
    )


def redis_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "Redis cannot be reached right now"."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (RedisConnectionError, RedisTimeoutError, OSError)


async def call_redis(operation: Callable[[], Awaitable[T]]) -> T:
    """Run *operation*, once more if the first attempt meets a dead connection.

    After Redis restarts, each pooled connection fails once ("connection closed by server")
    before the pool reconnects; one immediate retry hides that, while a Redis that is really
    down still fails fast (a refused connect takes no time).
    """
    try:
        return await operation()
    except redis_errors():
        return await operation()


class RedisLease:
    """One held Redis lease; see the module docstring."""

    def __init__(
        self, manager: RedisLockManager, key: str, owner: str, token: int, acquired_at: float
    ) -> None:
        self._manager = manager
        self.key = key
        self.owner = owner
        self.fencing_token: int | None = token
        self.valid_until = acquired_at + manager.lease_seconds  # monotonic
        self.lost = False

    async def verify(self) -> None:
        reserve = self._manager.lease_seconds * _VERIFY_MARGIN
        if self.lost or time.monotonic() > self.valid_until - reserve:
            raise LeaseLostError(f"the lease on {self.key!r} ran out before the work was committed")
        try:
            held = await self._manager._check(self.key, self.owner, self.fencing_token or 0)
        except redis_errors():
            # Redis cannot say; the lease is still within the time Redis last granted it, and
            # nobody can take the key before that time has passed.
            return
        if not held:
            self.lost = True
            raise LeaseLostError(f"the lease on {self.key!r} was taken over by another holder")


class RedisLockManager:
    """A :class:`~blockpilot.locks.LockManager` over Redis leases.

    Args:
        url: ``redis://…`` (or pass *client*).
        client: A ``redis.asyncio.Redis`` (tests; the manager then does not close it).
        lease_seconds: Lease time; renewed every third of it while held.
        poll_seconds: Longest pause between attempts while another process holds the key.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        poll_seconds: float = 0.1,
    ) -> None:
        if (url is None) == (client is None):
            raise ValueError("give either url or client")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be > 0")
        self._client = client if client is not None else redis_client(str(url))
        self._owns_client = client is None
        self.lease_seconds = float(lease_seconds)
        self.poll_seconds = poll_seconds
        self._local = InProcessLockManager()
        self._acquire = self._client.register_script(_ACQUIRE)
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)
        self._check_script = self._client.register_script(_CHECK)

    @property
    def client(self) -> Any:
        return self._client

    async def ping(self) -> bool:
        """Whether Redis answers now."""
        try:
            return bool(await call_redis(self._client.ping))
        except redis_errors():
            return False

    @asynccontextmanager
    async def hold(self, key: str, *, timeout: float = 30.0) -> AsyncIterator[RedisLease]:
        deadline = time.monotonic() + timeout
        # One waiter per key in this process goes to Redis; the others queue here.
        async with self._local.hold(key, timeout=timeout):
            lease = await self._take(key, deadline, timeout)
            watchdog = asyncio.get_running_loop().create_task(self._keep(lease))
            try:
                yield lease
            finally:
                watchdog.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watchdog
                await self._give_back(lease)

    async def aclose(self) -> None:
        if self._owns_client:
            with contextlib.suppress(Exception):
                await self._client.aclose()

    # -- internals ---------------------------------------------------------------------------

    def _keys(self, key: str) -> list[str]:
        return [KEY_PREFIX + key, KEY_PREFIX + key + FENCE_SUFFIX]

    async def _take(self, key: str, deadline: float, timeout: float) -> RedisLease:
        owner = secrets.token_hex(16)
        ttl_ms = max(1, int(self.lease_seconds * 1000))
        pause = 0.005
        while True:
            started = time.monotonic()
            try:
                token = int(
                    await call_redis(
                        lambda: self._acquire(
                            keys=self._keys(key), args=[owner, ttl_ms, FENCE_TTL_MS]
                        )
                    )
                )
            except redis_errors() as exc:
                raise LockUnavailableError(f"Redis is unreachable ({type(exc).__name__})") from None
            if token:
                # The lease counts from before the request: Redis may have granted it at any
                # moment since.
                return RedisLease(self, key, owner, token, started)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"waited more than {timeout:g}s for the lock {key!r}")
            pause = min(self.poll_seconds, pause * 2)
            await asyncio.sleep(
                min(pause * random.uniform(0.5, 1.0), max(0.0, deadline - time.monotonic()))
            )

    async def _keep(self, lease: RedisLease) -> None:
        """Renew *lease* every third of its time until cancelled or lost."""
        ttl_ms = max(1, int(self.lease_seconds * 1000))
        interval = self.lease_seconds / 3
        while not lease.lost:
            await asyncio.sleep(interval)
            started = time.monotonic()
            try:
                renewed = await call_redis(
                    lambda: self._renew(keys=self._keys(lease.key)[:1], args=[lease.owner, ttl_ms])
                )
            except redis_errors():
                if time.monotonic() > lease.valid_until:
                    lease.lost = True
                    logger.warning(
                        "lock lease expired while Redis was unreachable", extra={"lock": lease.key}
                    )
                continue
            if renewed:
                lease.valid_until = started + self.lease_seconds
            else:
                lease.lost = True
                logger.warning(
                    "lock lease was lost before it was released", extra={"lock": lease.key}
                )

    async def _give_back(self, lease: RedisLease) -> None:
        try:
            await call_redis(
                lambda: self._release(keys=self._keys(lease.key)[:1], args=[lease.owner])
            )
        except redis_errors():
            pass  # it expires by itself within the lease time

    async def _check(self, key: str, owner: str, token: int) -> bool:
        return bool(
            await call_redis(lambda: self._check_script(keys=self._keys(key), args=[owner, token]))
        )
