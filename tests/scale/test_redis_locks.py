"""RedisLockManager against a real redis-server: exclusion, renewal, fencing, outages.

Each RedisLockManager has its own client, as each server process would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as redis_asyncio

from blockpilot.errors import LeaseLostError, LockUnavailableError
from blockpilot.redis_locks import KEY_PREFIX, RedisLockManager
from tests.scale.scale_services import RedisServer

Managers = Callable[..., RedisLockManager]


@pytest.fixture
async def managers(redis_server: RedisServer) -> AsyncIterator[Managers]:
    made: list[RedisLockManager] = []

    def make(**options: object) -> RedisLockManager:
        options.setdefault("lease_seconds", 2.0)
        manager = RedisLockManager(redis_server.url, **options)  # type: ignore[arg-type]
        made.append(manager)
        return manager

    yield make
    for manager in made:
        await manager.aclose()


async def test_one_holder_at_a_time_across_processes(managers: Managers) -> None:
    inside: list[int] = []
    overlaps = 0

    async def work(manager: RedisLockManager, n: int) -> None:
        nonlocal overlaps
        async with manager.hold("k", timeout=20):
            inside.append(n)
            if len(inside) > 1:
                overlaps += 1
            await asyncio.sleep(0.01)
            inside.remove(n)

    first, second, third = managers(), managers(), managers()
    await asyncio.gather(*(work(m, i) for i, m in enumerate([first, second, third] * 10)))
    assert overlaps == 0


async def test_fencing_tokens_grow_with_every_acquisition(managers: Managers) -> None:
    first, second = managers(), managers()
    tokens = []
    for manager in (first, second, first, second):
        async with manager.hold("k") as lease:
            tokens.append(lease.fencing_token)
    assert all(isinstance(t, int) for t in tokens)
    assert tokens == sorted(tokens) and len(set(tokens)) == 4
    # Never below the Redis clock in ms: a Redis that lost its data cannot hand out old numbers.
    assert tokens[0] >= int(time.time() * 1000) - 60_000


async def test_fencing_tokens_keep_growing_after_redis_loses_its_data(
    managers: Managers, redis_server: RedisServer
) -> None:
    manager = managers()
    for _ in range(3):
        async with manager.hold("k") as lease:
            before = lease.fencing_token
    redis_server.stop()
    redis_server.start()  # no persistence: everything is gone
    async with manager.hold("k") as lease:
        assert lease.fencing_token is not None and before is not None
        assert lease.fencing_token > before


async def test_a_holder_slower_than_its_lease_keeps_it(managers: Managers) -> None:
    holder, other = managers(lease_seconds=1.0), managers(lease_seconds=1.0)
    async with holder.hold("k") as lease:
        await asyncio.sleep(2.5)  # over twice the lease: the watchdog renews it
        with pytest.raises(TimeoutError):
            async with other.hold("k", timeout=0.5):
                pass
        await lease.verify()
    async with other.hold("k", timeout=1.0):
        pass  # released at once, no need to wait for expiry


async def test_a_lost_lease_fails_verification_and_never_deletes_the_new_holders_lock(
    managers: Managers, redis_server: RedisServer
) -> None:
    holder, other = managers(), managers()
    client = redis_asyncio.from_url(redis_server.url)
    try:
        async with holder.hold("k") as lease:
            await client.delete(KEY_PREFIX + "k")  # as if it expired during a long pause
            async with other.hold("k", timeout=1.0) as newer:
                assert newer.fencing_token > lease.fencing_token  # type: ignore[operator]
                with pytest.raises(LeaseLostError):
                    await lease.verify()
                await newer.verify()
        # The old holder's release (on leaving its block) did not remove anything of the new one.
    finally:
        await client.aclose()


async def test_a_holder_that_dies_frees_the_lock_after_its_lease(managers: Managers) -> None:
    dead = managers(lease_seconds=0.5)
    lease_task = asyncio.get_running_loop().create_task(dead._take("k", time.monotonic() + 5, 5))
    await lease_task  # taken, and never renewed or released: the process "died"
    started = time.monotonic()
    async with managers(lease_seconds=0.5).hold("k", timeout=5):
        pass
    assert 0.2 < time.monotonic() - started < 5.0


async def test_redis_down_raises_lock_unavailable_at_once(
    managers: Managers, redis_server: RedisServer
) -> None:
    manager = managers()
    async with manager.hold("k"):
        pass
    redis_server.stop()
    started = time.monotonic()
    with pytest.raises(LockUnavailableError):
        async with manager.hold("k"):
            pass
    assert time.monotonic() - started < 5
    assert not await manager.ping()
    redis_server.start()  # same port: the client reconnects by itself
    async with manager.hold("k"):
        pass
    assert await manager.ping()


async def test_redis_down_while_holding_keeps_the_lease_until_it_runs_out(
    managers: Managers, redis_server: RedisServer
) -> None:
    manager = managers(lease_seconds=1.0)
    async with manager.hold("k") as lease:
        redis_server.stop()
        await lease.verify()  # still within the time Redis granted: nobody can have it
        await asyncio.sleep(1.2)
        with pytest.raises(LeaseLostError):
            await lease.verify()


async def test_an_acquire_retried_after_its_answer_was_lost_is_still_ours(
    managers: Managers,
) -> None:
    manager = managers()
    keys, owner = manager._keys("k"), "owner-1"
    first = await manager._acquire(keys=keys, args=[owner, 2000, 60_000])
    again = await manager._acquire(
        keys=keys, args=[owner, 2000, 60_000]
    )  # the same request, retried
    assert first and again == first
    assert await manager._acquire(keys=keys, args=["owner-2", 2000, 60_000]) == 0
