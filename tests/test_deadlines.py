"""Time limits with one timer per loop (blockpilot.executions.deadlines) behave as
``asyncio.timeout`` does: each scope fires at its own limit, raises TimeoutError only for
its own expiry, and leaves other cancellations alone."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref

import pytest

from blockpilot.executions.deadlines import Deadline, deadline_in

LONG = 60.0  # a limit no test waits for
SHORT = 0.01


async def test_a_scope_whose_limit_passes_raises_timeout_error() -> None:
    deadline = deadline_in(SHORT)
    with pytest.raises(TimeoutError), deadline:
        await asyncio.sleep(LONG)
    assert deadline.expired()
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_scope_that_ends_in_time_is_not_expired() -> None:
    deadline = deadline_in(LONG)
    with deadline:
        await asyncio.sleep(0)
    assert not deadline.expired()


async def test_a_timeout_error_raised_by_the_code_is_not_the_scope_expiring() -> None:
    deadline = deadline_in(LONG)
    with pytest.raises(TimeoutError, match="upstream"), deadline:
        raise TimeoutError("upstream")
    assert not deadline.expired()


async def test_a_limit_already_passed_expires_at_the_first_await() -> None:
    deadline = Deadline(asyncio.get_running_loop().time() - 1)
    with pytest.raises(TimeoutError), deadline:
        await asyncio.sleep(LONG)
    assert deadline.expired()


async def test_nested_the_inner_limit_fires_first_and_the_outer_carries_on() -> None:
    outer, inner = deadline_in(LONG), deadline_in(SHORT)
    with outer:
        with pytest.raises(TimeoutError), inner:
            await asyncio.sleep(LONG)
        await asyncio.sleep(0)  # the outer scope's code goes on after the inner timeout
    assert inner.expired()
    assert not outer.expired()


async def test_nested_the_outer_limit_fires_first_and_passes_through_the_inner() -> None:
    outer, inner = deadline_in(SHORT), deadline_in(LONG)
    seen: list[type[BaseException]] = []
    with pytest.raises(TimeoutError), outer:
        try:
            with inner:
                await asyncio.sleep(LONG)
        except BaseException as exc:
            seen.append(type(exc))
            raise
    assert seen == [asyncio.CancelledError]  # the inner scope did not take it for its own
    assert outer.expired()
    assert not inner.expired()


async def test_a_later_scope_with_an_earlier_limit_is_not_delayed_by_a_longer_one() -> None:
    # The one timer is armed for the long limit first; the short scope must re-arm it.
    entered = asyncio.Event()
    long_deadline = deadline_in(LONG)

    async def patient() -> None:
        with long_deadline:
            entered.set()
            await asyncio.sleep(LONG)

    waiting = asyncio.create_task(patient())
    await entered.wait()
    short = deadline_in(SHORT)
    with pytest.raises(TimeoutError), short:
        await asyncio.sleep(LONG)
    assert short.expired()
    assert not long_deadline.expired()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not long_deadline.expired()


async def test_every_scope_due_at_once_expires() -> None:
    async def limited() -> bool:
        deadline = deadline_in(SHORT)
        try:
            with deadline:
                await asyncio.sleep(LONG)
        except TimeoutError:
            return deadline.expired()
        return False

    assert await asyncio.gather(*(limited() for _ in range(200))) == [True] * 200


async def test_scopes_that_ended_leave_the_next_ones_working() -> None:
    for _ in range(50):
        with deadline_in(SHORT / 2):
            await asyncio.sleep(0)
    deadline = deadline_in(SHORT)
    with pytest.raises(TimeoutError), deadline:
        await asyncio.sleep(LONG)
    assert deadline.expired()


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    entered = asyncio.Event()
    deadline = deadline_in(LONG)

    async def body() -> None:
        with deadline:
            entered.set()
            await asyncio.sleep(LONG)

    task = asyncio.create_task(body())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not deadline.expired()


async def test_a_cancellation_from_elsewhere_beside_the_expiry_stays_a_cancellation() -> None:
    # As asyncio.timeout: when the task is also cancelled by someone else, the scope must not
    # swallow that request by turning it into a TimeoutError.
    deadline = deadline_in(SHORT)
    outcome: list[str] = []

    async def body() -> None:
        try:
            with deadline:
                try:
                    await asyncio.sleep(LONG)
                except asyncio.CancelledError:
                    asyncio.current_task().cancel()  # type: ignore[union-attr]  # another request
                    raise
        except TimeoutError:
            outcome.append("timeout")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    task = asyncio.create_task(body())
    with pytest.raises(asyncio.CancelledError):
        await task
    assert outcome == ["cancelled"]
    assert deadline.expired()


def test_outside_a_task_it_is_an_error() -> None:
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(RuntimeError, match="inside a task"):
            loop.run_until_complete(_enter_from_a_callback(loop))
    finally:
        loop.close()


async def _enter_from_a_callback(loop: asyncio.AbstractEventLoop) -> None:
    failure: asyncio.Future[None] = loop.create_future()

    def enter() -> None:
        try:
            with Deadline(loop.time() + LONG):
                pass
        except RuntimeError as exc:
            failure.set_exception(exc)
        else:
            failure.set_result(None)

    loop.call_soon(enter)
    await failure


def test_loops_in_other_threads_have_their_own_timer() -> None:
    results: list[bool] = []

    async def limited() -> None:
        deadline = deadline_in(SHORT)
        try:
            with deadline:
                await asyncio.sleep(LONG)
        except TimeoutError:
            results.append(deadline.expired())

    threads = [threading.Thread(target=asyncio.run, args=(limited(),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 4


def test_a_closed_loop_is_not_kept_alive_by_its_timer() -> None:
    async def limited() -> None:
        with deadline_in(LONG):  # leaves the loop's one timer armed for LONG
            await asyncio.sleep(0)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(limited())
    loop.close()
    gone = weakref.ref(loop)
    del loop
    asyncio.run(limited())  # another loop becomes the last one asked about
    gc.collect()
    assert gone() is None
