"""The API's per-user limits shared by every server process, in Redis.

Same interface and semantics as :class:`~blockpilot.limits.InProcessRateLimiter`, but
the state lives in Redis, so a user's budget and tool-call cap hold across all processes:

* **Rate**: a token bucket per user (a Redis hash), refilled and spent atomically by a Lua
  script on the Redis server's clock, so the machines' clocks need not agree.
* **Concurrency**: a sorted set of slots per user, scored by when each slot expires. A slot
  is renewed every third of :data:`SLOT_LEASE_SECONDS` while its tool call runs, so the
  slots of a process that died free themselves within that time instead of leaking.

Redis down: both fall back to the in-process limiter of *this* process (each process then
enforces the per-user limits on its own share of the traffic, as without Redis), logged
once per outage; Redis back: shared limits again, automatically. Limits never fail closed:
refusing every request because the limiter is down would turn a Redis outage into an
outage of the whole service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from blockpilot.limits._memory import (
    WINDOW_SECONDS,
    Decision,
    InProcessRateLimiter,
    too_many_in_flight,
)
from blockpilot.redis_locks import call_redis, redis_client, redis_errors
from blockpilot.settings import Settings

logger = logging.getLogger(__name__)

SLOT_LEASE_SECONDS = 60.0
_PREFIX = "blockpilot:limits:"

# KEYS[1] bucket; ARGV: capacity, refill per ms, idle ttl ms. Returns {allowed, retry_after_ms}.
_TAKE_TOKEN = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = capacity
  at = now
end
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {allowed, wait}
"""

# KEYS[1] slots; ARGV: slot id, max slots, slot lease ms. Returns 1 if taken.
_TAKE_SLOT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS[1] slots; ARGV: slot id, slot lease ms. Returns 1 if the slot was still held.
_RENEW_SLOT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class RedisRateLimiter:
    """A :class:`~blockpilot.limits.RateLimiter` whose state is shared through Redis.

    Args:
        per_minute: Requests per user per minute; 0 turns the rate limit off.
        max_concurrent: Tool calls one user may have in flight across all processes; 0 = no cap.
        url: ``redis://…`` (or pass *client*).
        client: A ``redis.asyncio.Redis`` (tests).
        slot_lease_seconds: How long a tool-call slot survives its process.
    """

    def __init__(
        self,
        per_minute: int,
        max_concurrent: int,
        *,
        url: str | None = None,
        client: Any = None,
        slot_lease_seconds: float = SLOT_LEASE_SECONDS,
    ) -> None:
        if (url is None) == (client is None):
            raise ValueError("give either url or client")
        if per_minute < 0 or max_concurrent < 0:
            raise ValueError("limits must be >= 0 (0 means no limit)")
        self.per_minute = per_minute
        self.max_concurrent = max_concurrent
        self.slot_lease_seconds = slot_lease_seconds
        self._client = client if client is not None else redis_client(str(url))
        self._owns_client = client is None
        self._fallback = InProcessRateLimiter(per_minute, max_concurrent)
        self._take_token = self._client.register_script(_TAKE_TOKEN)
        self._take_slot = self._client.register_script(_TAKE_SLOT)
        self._renew_slot = self._client.register_script(_RENEW_SLOT)
        self.degraded = False

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisRateLimiter:
        assert settings.redis_url, "RedisRateLimiter needs BLOCKPILOT_REDIS_URL"
        return cls(
            settings.rate_limit_per_minute,
            settings.max_concurrent_runs_per_user,
            url=settings.redis_url,
        )

    async def aclose(self) -> None:
        if self._owns_client:
            with contextlib.suppress(Exception):
                await self._client.aclose()

    def _redis_failed(self, exc: BaseException) -> None:
        if not self.degraded:
            logger.warning(
                "Redis unreachable (%s): rate limits and tool-call caps are enforced per process "
                "until it is back",
                type(exc).__name__,
            )
        self.degraded = True

    def _redis_ok(self) -> None:
        if self.degraded:
            logger.info("Redis reachable again: rate limits and tool-call caps are shared again")
        self.degraded = False

    async def acquire(self, user_id: str) -> Decision:
        if self.per_minute == 0:
            return Decision(True)
        try:
            allowed, wait_ms = await call_redis(
                lambda: self._take_token(
                    keys=[f"{_PREFIX}rate:{user_id}"],
                    args=[
                        self.per_minute,
                        self.per_minute / (WINDOW_SECONDS * 1000),
                        int(WINDOW_SECONDS * 2000),
                    ],
                )
            )
        except redis_errors() as exc:
            self._redis_failed(exc)
            return await self._fallback.acquire(user_id)
        self._redis_ok()
        return Decision(True) if int(allowed) else Decision(False, retry_after=int(wait_ms) / 1000)

    @asynccontextmanager
    async def concurrency(self, user_id: str) -> AsyncIterator[None]:
        if self.max_concurrent == 0:
            yield
            return
        key = f"{_PREFIX}running:{user_id}"
        slot = secrets.token_hex(12)
        lease_ms = int(self.slot_lease_seconds * 1000)
        try:
            taken = int(
                await call_redis(
                    lambda: self._take_slot(keys=[key], args=[slot, self.max_concurrent, lease_ms])
                )
            )
        except redis_errors() as exc:
            self._redis_failed(exc)
            taken = -1
        if taken == -1:
            async with self._fallback.concurrency(user_id):
                yield
            return
        self._redis_ok()
        if not taken:
            raise too_many_in_flight(self.max_concurrent)
        keeper = asyncio.get_running_loop().create_task(self._keep_slot(key, slot, lease_ms))
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            with contextlib.suppress(*redis_errors()):
                await call_redis(lambda: self._client.zrem(key, slot))

    async def running(self, user_id: str) -> int:
        """Tool calls of *user_id* in flight now, across all processes."""
        key = f"{_PREFIX}running:{user_id}"
        now_seconds, now_micros = await self._client.time()
        return int(await self._client.zcount(key, now_seconds * 1000 + now_micros // 1000, "+inf"))

    async def _keep_slot(self, key: str, slot: str, lease_ms: int) -> None:
        while True:
            await asyncio.sleep(self.slot_lease_seconds / 3)
            with contextlib.suppress(*redis_errors()):
                await call_redis(lambda: self._renew_slot(keys=[key], args=[slot, lease_ms]))
