"""The search index is built in the background at start-up and after each source change,
shared by every search; a search that comes first waits for the build under way, and
``Pilot.close`` stops a build in flight (docs/performance.md#catalogue-scale)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

from blockpilot.blocks.base import Block, BlockOutput
from blockpilot.blocks.registry import BlockRegistry
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.sources.base import SourceOptions
from blockpilot.storage.users import User
from tests.sources.test_catalog_updates import BASE_URL, _spec

BLOCKS = 3000  # more than one stop check's worth (every 1,024 documents)


class _Gate:
    """Holds the first document of a build until released, counting how often it is read."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        self.reads = 0


class GatedBlock(Block):
    """A stand-in source block (many instances, one class); one of them can hold a build."""

    categories = frozenset()
    effect = Block.effect

    class Input(BlockSchemaInput):
        pass

    class Output(BlockSchemaOutput):
        pass

    def __init__(self, number: int, gate: _Gate | None = None) -> None:
        self.id = str(uuid.UUID(int=number + 1))  # type: ignore[misc]
        self._name = f"Gated{number:05d}Block"
        self.description = f"Gated block number {number} for the wombat keepers"  # type: ignore[misc]
        self._gate = gate

    @property
    def name(self) -> str:
        return self._name

    def search_fields(self) -> tuple[tuple[str, str], ...]:
        if self._gate is not None:
            self._gate.reads += 1
            self._gate.reached.set()
            assert self._gate.release.wait(30), "the test never released the build"
        return ()

    async def run(self, input_data: Any, **kwargs: Any) -> BlockOutput:
        yield "error", "not runnable"


def _registry(gate: _Gate) -> BlockRegistry:
    registry = BlockRegistry(sources=[])
    registry.set_source_blocks(
        "gated", [GatedBlock(0, gate), *(GatedBlock(n) for n in range(1, BLOCKS))]
    )
    return registry


async def test_built_at_start_up_without_a_search(pilot: Pilot) -> None:
    await pilot.catalog.background_build_done()
    assert pilot.catalog.is_current()
    index = pilot.catalog.index
    assert pilot.catalog.index is index  # shared, not rebuilt per request


async def test_rebuilt_in_the_background_after_a_source_change(pilot: Pilot, alice: User) -> None:
    await pilot.catalog.background_build_done()
    before = pilot.catalog.index
    await pilot.sources.add("openapi", "zoo", _spec("List the quokkas"), SourceOptions(BASE_URL))
    await pilot.catalog.background_build_done()
    assert pilot.catalog.is_current()  # no search was needed
    after = pilot.catalog.index
    assert after is not before and len(after) == len(before) + 2
    response = await pilot.call_tool("find_block", {"query": "quokkas"}, user_id=alice.id)
    assert [b.name for b in response.blocks][:1] == ["zoo_listQuokkas"]  # type: ignore[attr-defined]
    await pilot.sources.remove("zoo")
    await pilot.catalog.background_build_done()
    assert pilot.catalog.is_current() and len(pilot.catalog.index) == len(before)


async def test_first_search_waits_for_the_build_under_way(settings: Settings) -> None:
    gate = _Gate()
    pilot = await Pilot.open(settings, registry=_registry(gate))
    try:
        assert await asyncio.to_thread(gate.reached.wait, 30)  # the build is under way
        assert not pilot.catalog.is_current()
        search = asyncio.create_task(asyncio.to_thread(pilot.catalog.search, "wombat", 3))
        await asyncio.sleep(0.05)
        assert not search.done()  # waiting for the build, not starting its own
        gate.release.set()
        found = await search
        assert len(found) == 3
        assert gate.reads == 1  # one build served the background and the search
        assert pilot.catalog.is_current()
    finally:
        gate.release.set()
        await pilot.close()


async def test_find_block_waits_for_the_build_without_holding_the_event_loop(
    settings: Settings,
) -> None:
    gate = _Gate()
    pilot = await Pilot.open(settings, registry=_registry(gate))
    try:
        user, _ = await pilot.users.create("wombat-keeper")
        assert await asyncio.to_thread(gate.reached.wait, 30)  # the build is under way
        call = asyncio.create_task(
            pilot.call_tool("find_block", {"query": "wombat"}, user_id=user.id)
        )
        ticks = 0
        for _ in range(20):  # the loop keeps running other tasks while the call waits
            await asyncio.sleep(0.005)
            ticks += 1
        assert ticks == 20 and not call.done()
        gate.release.set()
        response = await call
        assert response.type == "block_list" and gate.reads == 1
    finally:
        gate.release.set()
        await pilot.close()


async def test_close_stops_a_build_in_flight(settings: Settings, caplog: Any) -> None:
    gate = _Gate()
    pilot = await Pilot.open(settings, registry=_registry(gate))
    assert await asyncio.to_thread(gate.reached.wait, 30)
    closing = asyncio.create_task(pilot.close())
    await asyncio.sleep(0.05)
    gate.release.set()  # the build goes on to its next stop check and ends there
    await closing
    assert not pilot.catalog.is_current()  # nothing half-built was kept
    assert not [t for t in threading.enumerate() if t.name == "blockpilot-search-index"]
    assert "search index build failed" not in caplog.text
    pilot.catalog.build_in_background()  # closed: nothing starts again
    assert not [t for t in threading.enumerate() if t.name == "blockpilot-search-index"]
