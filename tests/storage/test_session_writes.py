"""A call without a session makes a durable, reusable session of the caller's own.

On a SQLite file the session row is committed by the direct writer (docs/performance.md);
these tests read it back through the engine and through a second Pilot, and check that it
stays the caller's: another user's call with it is 'not found'.
"""

from __future__ import annotations

from typing import Any

import pytest

from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.storage import users as users_module
from blockpilot.storage.sessions import SessionStore
from blockpilot.storage.users import User, hash_api_key

CANARY = "sk-canary-session-7f3a9c2e41"


async def _find(pilot: Pilot, user: User, session_id: str | None) -> dict[str, Any]:
    response = await pilot.call_tool(
        "find_block", {"query": "calculator"}, user_id=user.id, session_id=session_id
    )
    data: dict[str, Any] = response.model_dump(mode="json")
    return data


async def test_sessionless_calls_make_durable_reusable_sessions(
    pilot: Pilot, alice: User, bob: User, settings: Settings
) -> None:
    await pilot.add_credentials(
        alice.id, {"provider": "openai", "type": "api_key", "api_key": CANARY}
    )
    made = [(await _find(pilot, alice, None))["session_id"] for _ in range(5)]
    assert len(set(made)) == 5 and all(made)
    again = await _find(pilot, alice, made[0])
    assert again["session_id"] == made[0] and again["type"] != "error"

    listed = {s.session_id for s in await pilot.sessions.list(alice.id)}  # the engine's read
    assert set(made) <= listed
    other = await Pilot.open(settings)  # another Pilot, no shared cache: the rows are there
    try:
        for session_id in made:
            found = await other.sessions.get(alice.id, session_id)
            assert found is not None and found.user_id == alice.id
            assert await other.sessions.get(bob.id, session_id) is None
    finally:
        await other.close()

    stolen = await _find(pilot, bob, made[1])
    assert stolen["type"] == "error" and stolen["code"] == "session_not_found"
    assert CANARY not in str(stolen) and CANARY not in str(again)


async def test_a_sessionless_call_for_an_unknown_user_is_user_not_found(pilot: Pilot) -> None:
    data = await _find(pilot, User("00000000-0000-4000-8000-000000000000", "x", None), None)  # type: ignore[arg-type]
    assert data["type"] == "error" and data["code"] == "user_not_found"
    assert await pilot.sessions.list("00000000-0000-4000-8000-000000000000") == []


async def test_the_owner_cache_keeps_the_newest_and_evicted_sessions_stay_scoped(
    pilot: Pilot, alice: User, bob: User
) -> None:
    store = SessionStore(pilot.engine, cache_size=3)
    try:
        made = [(await store.create(alice.id)).session_id for _ in range(5)]
        assert list(store._owner_cache) == made[2:]  # the oldest went first
        for session_id in made:  # evicted ones are read back, still only for their owner
            found = await store.get(alice.id, session_id)
            assert found is not None and found.session_id == session_id
            assert await store.get(bob.id, session_id) is None
        assert len(store._owner_cache) == 3
    finally:
        await store.close()


async def test_the_api_key_cache_evicts_the_oldest_key(
    pilot: Pilot, alice: User, bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(users_module, "_KEY_CACHE_SIZE", 2)
    keys = [await pilot.users.create_api_key(alice.id), await pilot.users.create_api_key(bob.id)]
    keys.append(await pilot.users.create_api_key(alice.id))
    owners = [await pilot.users.user_for_api_key(key) for key in keys]
    assert [owner.id if owner else None for owner in owners] == [alice.id, bob.id, alice.id]
    cached = list(pilot.users._keys)
    assert cached == [hash_api_key(key) for key in keys[1:]]
    assert (await pilot.users.user_for_api_key(keys[0])) == alice  # read again, then cached
    assert list(pilot.users._keys) == [hash_api_key(key) for key in (keys[2], keys[0])]
