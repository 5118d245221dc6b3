"""find_block's shared index follows the stored sources: added, refreshed, removed.

The index is built once per catalogue and shared by every search; a source change makes the
next search use a new index built from the previous one (docs/performance.md). Sources are
the whole deployment's, so two users see the same blocks before and after each change. A
second Pilot on the same database (another process) sees the change on its next check.
"""

from __future__ import annotations

import asyncio
import json
import random
import string
import uuid
from typing import Any

from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.sources.base import SOURCE_BLOCK_NAMESPACE, SourceOptions, source_block_id
from blockpilot.storage.users import User

BASE_URL = "https://zoo.example.com"


def _spec(summary: str) -> str:
    def op(op_id: str, text: str) -> dict[str, Any]:
        return {"operationId": op_id, "summary": text, "responses": {"200": {"description": "OK"}}}

    return json.dumps(
        {
            "openapi": "3.1.0",
            "info": {"title": "Zoo", "version": "1"},
            "paths": {
                "/quokkas": {"get": op("listQuokkas", summary)},
                "/wombats": {"post": op("feedWombat", "Feed a hungry wombat its carrots")},
            },
        }
    )


async def _names(pilot: Pilot, user: User, query: str) -> list[str]:
    response = await pilot.call_tool("find_block", {"query": query}, user_id=user.id)
    return [b.name for b in getattr(response, "blocks", [])]


async def test_search_follows_sources_for_every_user(
    pilot: Pilot, alice: User, bob: User, settings: Settings
) -> None:
    assert await _names(pilot, alice, "quokka") == []
    index = pilot.catalog.index
    assert pilot.catalog.index is index  # built once, shared by every search

    first = _spec("List the quokkas of the enclosure")
    await pilot.sources.add("openapi", "zoo", first, SourceOptions(BASE_URL))
    for user in (alice, bob):
        assert (await _names(pilot, user, "enclosure"))[:1] == ["zoo_listQuokkas"]
        assert (await _names(pilot, user, "quokka"))[:1] == ["zoo_listQuokkas"]
        assert (await _names(pilot, user, "feed wombat"))[:1] == ["zoo_feedWombat"]
    rebuilt = pilot.catalog.index
    assert rebuilt is not index and len(rebuilt) == len(index) + 2
    assert (await _names(pilot, alice, "send email"))[:1] == ["SendEmailBlock"]  # kept

    other = await Pilot.open(settings)  # another process on the same database
    try:
        bob_there = (await _names(other, bob, "quokka"))[:1]
        assert bob_there == ["zoo_listQuokkas"]

        # A refresh that changes an operation's text: the new words find it, the old don't.
        await pilot.sources.refresh("zoo", _spec("Count the capybaras"))
        for user in (alice, bob):
            assert (await _names(pilot, user, "capybara"))[:1] == ["zoo_listQuokkas"]
            assert "zoo_listQuokkas" not in await _names(pilot, user, "enclosure")
        await other.sources.sync(force=True)
        assert (await _names(other, alice, "capybara"))[:1] == ["zoo_listQuokkas"]

        await pilot.sources.remove("zoo")
        await other.sources.sync(force=True)
        for p in (pilot, other):
            for user in (alice, bob):
                assert await _names(p, user, "capybara") == []
                assert await _names(p, user, "wombat") == []
                assert (await _names(p, user, "send email"))[:1] == ["SendEmailBlock"]
    finally:
        await other.close()
    assert len(pilot.catalog.index) == len(index)


async def test_a_broken_source_leaves_the_others_searchable(pilot: Pilot, alice: User) -> None:
    await pilot.sources.add("openapi", "zoo", _spec("List the quokkas"), SourceOptions(BASE_URL))
    await pilot.sources.add("openapi", "zoo2", _spec("List the quokkas"), SourceOptions(BASE_URL))
    names = await _names(pilot, alice, "quokka")
    assert {"zoo_listQuokkas", "zoo2_listQuokkas"} <= set(names)
    # Two sources changed in one check are merged into the catalogue in one step.
    generation = pilot.registry.generation
    await pilot.sources.remove("zoo2")
    assert pilot.registry.generation == generation + 1
    assert "zoo2_listQuokkas" not in await _names(pilot, alice, "quokka")
    assert pilot.registry.retired(source_block_id("zoo2", "listQuokkas"))


def test_source_block_ids_are_uuid5() -> None:
    rng = random.Random(3)
    alphabet = string.ascii_letters + string.digits + "/{}_-.é☃"
    for _ in range(2_000):
        source = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(1, 40)))
        key = "".join(rng.choices(alphabet, k=rng.randint(0, 60)))
        expected = str(uuid.uuid5(SOURCE_BLOCK_NAMESPACE, f"{source}:{key}"))
        assert source_block_id(source, key) == expected


async def test_the_once_a_second_check_sees_another_process_change(
    pilot: Pilot, alice: User, settings: Settings
) -> None:
    other = await Pilot.open(settings)  # another process on the same database
    try:
        assert await _names(other, alice, "quokka") == []  # checked just now
        await pilot.sources.add(
            "openapi", "zoo", _spec("List the quokkas"), SourceOptions(BASE_URL)
        )
        assert (await _names(pilot, alice, "quokka"))[:1] == ["zoo_listQuokkas"]  # this process
        other.sources.check_seconds = 0  # the next call is past the interval
        assert (await _names(other, alice, "quokka"))[:1] == ["zoo_listQuokkas"]
    finally:
        await other.close()


async def test_a_call_during_a_check_does_not_wait_for_it(
    pilot: Pilot, alice: User, settings: Settings
) -> None:
    other = await Pilot.open(settings)
    try:
        await pilot.sources.add(
            "openapi", "zoo", _spec("List the quokkas"), SourceOptions(BASE_URL)
        )
        other.sources.check_seconds = 0
        async with other.sources._lock:  # a check of this process under way
            # Not waiting for it: the call answers, with the catalogue of the check before
            # (the limit only turns a wait, which never ends here, into a failure).
            async with asyncio.timeout(60):
                assert await _names(other, alice, "quokka") == []
        assert (await _names(other, alice, "quokka"))[:1] == ["zoo_listQuokkas"]
    finally:
        await other.close()
