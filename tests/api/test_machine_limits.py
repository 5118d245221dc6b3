"""Rate limits and tool-call caps shared by the workers of one machine (no Redis): the
SQLite file in ``BLOCKPILOT_HOME/run``.

Two limiters over one home stand for two workers (each with its own
:class:`~blockpilot.workers.Worker` and connection); a worker in another process that is
SIGKILLed while holding slots shows that a dead worker's slots are freed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from blockpilot.errors import RateLimitedError
from blockpilot.limits import MachineRateLimiter
from blockpilot.workers import Worker
from tests.api.test_limits import FakeClock

HOLD_TWO_SLOTS = """
import asyncio, sys
from pathlib import Path
from blockpilot.limits import MachineRateLimiter
from blockpilot.workers import Worker

async def main():
    limiter = MachineRateLimiter(60, 3, worker=Worker.start(Path(sys.argv[1])))
    async with limiter.concurrency("alice"), limiter.concurrency("alice"):
        print("holding", flush=True)
        await asyncio.sleep(600)

asyncio.run(main())
"""


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    started = [Worker.start(tmp_path / "home") for _ in range(2)]
    yield started
    for worker in started:
        worker.close()


def pair(
    workers: list[Worker], per_minute: int, max_concurrent: int, clock: FakeClock | None = None
) -> list[MachineRateLimiter]:
    options = {"clock": clock} if clock else {}
    return [MachineRateLimiter(per_minute, max_concurrent, worker=w, **options) for w in workers]


async def test_one_budget_for_all_workers_refilled_at_the_steady_rate(
    workers: list[Worker],
) -> None:
    clock = FakeClock()
    first, second = pair(workers, 6, 1, clock)
    allowed = [(await (first, second)[i % 2].acquire("alice")).allowed for i in range(8)]
    assert allowed == [True] * 6 + [False] * 2  # not 6 per worker
    refused = await second.acquire("alice")
    assert not refused.allowed and refused.retry_after == pytest.approx(10.0)
    clock.now += 10.1  # 6 per minute: one token every 10 s
    assert (await first.acquire("alice")).allowed
    assert not (await second.acquire("alice")).allowed
    assert (await second.acquire("bob")).allowed  # per user
    clock.now += 3600  # refilled up to one minute's budget, no more
    allowed = [(await (first, second)[i % 2].acquire("alice")).allowed for i in range(7)]
    assert allowed == [True] * 6 + [False]


async def test_concurrent_acquires_never_overspend(workers: list[Worker]) -> None:
    limiters = pair(workers, 50, 1) + pair(workers, 50, 1)  # four connections
    results = await asyncio.gather(*(limiters[i % 4].acquire("alice") for i in range(200)))
    assert sum(r.allowed for r in results) == 50


async def test_idle_buckets_are_dropped(workers: list[Worker]) -> None:
    clock = FakeClock()
    first, _ = pair(workers, 60, 1, clock)
    for user in ("alice", "bob"):
        await first.acquire(user)
    clock.now += 61
    await first.acquire("carol")
    with sqlite3.connect(first.path) as db:
        assert [row[0] for row in db.execute("SELECT user_id FROM rate_buckets")] == ["carol"]


async def test_tool_call_slots_are_shared_and_freed_on_error(workers: list[Worker]) -> None:
    first, second = pair(workers, 0, 2)
    async with first.concurrency("alice"), second.concurrency("alice"):
        assert await first.running("alice") == 2
        with pytest.raises(RateLimitedError) as refused:
            async with first.concurrency("alice"):
                pytest.fail("a third slot was granted")
        assert refused.value.code == "rate_limited" and refused.value.retry_after == 1
        async with second.concurrency("bob"):
            assert await first.running("bob") == 1
    with pytest.raises(ValueError):
        async with second.concurrency("alice"):
            raise ValueError("the tool call failed")
    assert await first.running("alice") == 0


async def test_a_cancelled_tool_call_frees_its_slot(workers: list[Worker]) -> None:
    first, _ = pair(workers, 0, 1)
    entered = asyncio.Event()

    async def call() -> None:
        async with first.concurrency("alice"):
            entered.set()
            await asyncio.sleep(600)

    task = asyncio.create_task(call())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await first.running("alice") == 0


async def test_slots_of_a_killed_worker_are_freed_when_a_user_needs_them(
    tmp_path: Path, workers: list[Worker]
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_TWO_SLOTS, str(tmp_path / "home")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "holding"
        limiter, _ = pair(workers, 0, 3)
        async with limiter.concurrency("alice"):
            with pytest.raises(RateLimitedError):  # the child is alive: its slots count
                async with limiter.concurrency("alice"):
                    pass
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
            async with limiter.concurrency("alice"), limiter.concurrency("alice"):
                assert await limiter.running("alice") == 3  # the dead worker's two are gone
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


async def test_zero_turns_the_limits_off(workers: list[Worker]) -> None:
    first, _ = pair(workers, 0, 0)
    assert all([(await first.acquire("alice")).allowed for _ in range(100)])
    async with first.concurrency("alice"), first.concurrency("alice"):
        pass


async def test_an_unusable_file_falls_back_to_per_worker_limits(
    workers: list[Worker], caplog: pytest.LogCaptureFixture
) -> None:
    first, _ = pair(workers, 2, 1)
    first.close()  # every statement now fails
    assert [(await first.acquire("alice")).allowed for _ in range(3)] == [True, True, False]
    async with first.concurrency("alice"):
        with pytest.raises(RateLimitedError):
            async with first.concurrency("alice"):
                pass
    assert first.degraded
    assert sum("shared limits file is unusable" in r.getMessage() for r in caplog.records) == 1
