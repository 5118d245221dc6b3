"""Policy rules as run_block reads them: cached, shared between concurrent calls, never stale
in the process that changed them (docs/approvals.md, docs/performance.md)."""

from __future__ import annotations

import asyncio

from blockpilot.approvals.policy import Decision, PolicyRule, Selector
from blockpilot.pilot import Pilot
from blockpilot.storage.policies import PolicyStore
from blockpilot.storage.users import User


def _deny(user: User, value: str) -> PolicyRule:
    return PolicyRule(Selector.BLOCK, value, Decision.DENY, user.id)


async def test_concurrent_reads_see_the_same_rules_and_only_their_user_s(
    pilot: Pilot, alice: User, bob: User
) -> None:
    store = PolicyStore(pilot.engine, cache_seconds=0)  # every call reads
    try:
        await store.add(_deny(alice, "a"))
        await store.add(_deny(bob, "b"))
        results = await asyncio.gather(
            *(store.for_user(alice.id if i % 2 else bob.id) for i in range(50))
        )
        for i, rules in enumerate(results):
            expected = [("a", alice.id)] if i % 2 else [("b", bob.id)]
            assert [(r.value, r.user_id) for r in rules] == expected
    finally:
        store.close()


async def test_a_change_applies_at_once_even_while_a_read_is_in_flight(
    pilot: Pilot, alice: User
) -> None:
    store = PolicyStore(pilot.engine, cache_seconds=60)
    try:
        assert await store.for_user(alice.id) == []
        for n in range(5):
            store._cache.clear()  # expire the cache: the next readers share one read
            readers = [asyncio.create_task(store.for_user(alice.id)) for _ in range(10)]
            await asyncio.sleep(0)  # the first reader has started its read
            added = await store.add(_deny(alice, f"v{n}"))
            after = await store.for_user(alice.id)
            assert added.id in {r.id for r in after}  # never the read that began before
            await asyncio.gather(*readers)
            cached = await store.for_user(alice.id)
            assert added.id in {r.id for r in cached}
        assert await store.remove(alice.id, added.id)
        assert added.id not in {r.id for r in await store.for_user(alice.id)}
    finally:
        store.close()


async def test_a_cancelled_reader_does_not_fail_the_calls_that_shared_its_read(
    pilot: Pilot, alice: User
) -> None:
    store = PolicyStore(pilot.engine, cache_seconds=0)
    try:
        await store.add(_deny(alice, "x"))
        for _ in range(20):
            first = asyncio.create_task(store.for_user(alice.id))
            others = [asyncio.create_task(store.for_user(alice.id)) for _ in range(5)]
            await asyncio.sleep(0)
            first.cancel()
            for rules in await asyncio.gather(*others):
                assert [r.value for r in rules] == ["x"]
    finally:
        store.close()
