"""RedisRateLimiter against a real redis-server: limits shared by processes, outages degrade."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from blockpilot.errors import RateLimitedError
from blockpilot.limits import InProcessRateLimiter, RedisRateLimiter, limiter_for
from tests.scale.scale_services import RedisServer

Limiters = Callable[..., RedisRateLimiter]


@pytest.fixture
async def limiters(redis_server: RedisServer) -> AsyncIterator[Limiters]:
    made: list[RedisRateLimiter] = []

    def make(per_minute: int = 0, max_concurrent: int = 0, **options: object) -> RedisRateLimiter:
        limiter = RedisRateLimiter(per_minute, max_concurrent, url=redis_server.url, **options)  # type: ignore[arg-type]
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.aclose()


async def test_the_request_budget_is_shared_by_all_processes(limiters: Limiters) -> None:
    first, second = limiters(per_minute=5), limiters(per_minute=5)
    decisions = [await (first, second)[i % 2].acquire("alice") for i in range(8)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3
    assert 0 < decisions[-1].retry_after <= 12  # one token refills in 60 / 5 s
    assert (await first.acquire("bob")).allowed  # per user


async def test_the_tool_call_cap_is_shared_by_all_processes(limiters: Limiters) -> None:
    first, second = limiters(max_concurrent=3), limiters(max_concurrent=3)
    async with contextlib.AsyncExitStack() as held:
        for limiter in (first, second, first):
            await held.enter_async_context(limiter.concurrency("alice"))
        assert await first.running("alice") == 3
        with pytest.raises(RateLimitedError) as caught:
            async with second.concurrency("alice"):
                pass
        assert caught.value.retry_after == 1
        async with second.concurrency("bob"):
            pass  # per user
    async with second.concurrency("alice"):
        assert await first.running("alice") == 1


async def test_the_slots_of_a_dead_process_free_themselves(limiters: Limiters) -> None:
    dead = limiters(max_concurrent=1, slot_lease_seconds=0.5)
    # What a process does on entering a tool call; it then "dies": no renewal, no release.
    assert (
        await dead._take_slot(keys=["blockpilot:limits:running:alice"], args=["dead-slot", 1, 500])
        == 1
    )
    other = limiters(max_concurrent=1, slot_lease_seconds=0.5)
    with pytest.raises(RateLimitedError):
        async with other.concurrency("alice"):
            pass
    await asyncio.sleep(0.7)
    async with other.concurrency("alice"):
        pass


async def test_a_long_tool_call_keeps_its_slot(limiters: Limiters) -> None:
    first, second = limiters(max_concurrent=1, slot_lease_seconds=0.6), limiters(max_concurrent=1)
    async with first.concurrency("alice"):
        await asyncio.sleep(1.5)  # longer than the slot's lease: renewed meanwhile
        with pytest.raises(RateLimitedError):
            async with second.concurrency("alice"):
                pass


async def test_redis_down_falls_back_to_this_process_and_recovers(
    limiters: Limiters, redis_server: RedisServer
) -> None:
    limiter = limiters(per_minute=3, max_concurrent=1)
    assert (await limiter.acquire("alice")).allowed
    redis_server.stop()
    assert (await limiter.acquire("alice")).allowed  # the process's own bucket: still limited
    assert limiter.degraded
    async with limiter.concurrency("alice"):
        with pytest.raises(RateLimitedError):
            async with limiter.concurrency("alice"):
                pass
    redis_server.start()
    assert (await limiter.acquire("alice")).allowed
    assert not limiter.degraded


def test_settings_with_a_redis_url_give_the_shared_limiter(
    settings_factory, redis_server: RedisServer
) -> None:
    assert isinstance(limiter_for(settings_factory()), InProcessRateLimiter)
    shared = limiter_for(settings_factory(redis_url=redis_server.url))
    assert isinstance(shared, RedisRateLimiter)
