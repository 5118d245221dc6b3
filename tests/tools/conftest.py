"""Fixtures for the tool tests: a real Pilot (SQLite in tmp) over the test-only blocks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from blockpilot.blocks.registry import BlockRegistry
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from tests.tools.bp_helpers import make_registry
from tests.tools.bp_test_blocks import CALLS


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


@pytest.fixture
def pilot_registry() -> BlockRegistry:
    """The tools tests' Pilot has the test blocks besides the built-in ones."""
    return make_registry()


PilotFactory = Callable[..., Awaitable[Pilot]]


@pytest.fixture
async def pilot_factory(settings_factory: Callable[..., Settings]) -> AsyncIterator[PilotFactory]:
    """Open more Pilots on the same home (same database and key) with other settings."""
    opened: list[Pilot] = []

    async def make(*, registry: BlockRegistry | None = None, **overrides: Any) -> Pilot:
        overrides.setdefault("http_allowed_hosts", ("127.0.0.1",))
        p = await Pilot.open(settings_factory(**overrides), registry=registry or make_registry())
        opened.append(p)
        return p

    yield make
    for p in opened:
        await p.close()
