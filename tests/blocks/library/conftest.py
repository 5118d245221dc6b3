"""Fixtures for the built-in block tests: run blocks through the real run_block tool path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from blockpilot.testing import LocalHTTPServer
from blockpilot.tools.responses import ToolResponseBase

from .lib_provider_helpers import elsewhere

RunBlock = Callable[..., Awaitable[dict[str, Any]]]


async def run_block(
    pilot: Pilot, user: User, block_id: str, input_data: dict[str, Any]
) -> dict[str, Any]:
    """Call run_block as the model would; return the response as plain JSON data."""
    response: ToolResponseBase = await pilot.call_tool(
        "run_block", {"block_id": block_id, "input_data": input_data}, user_id=user.id
    )
    return response.model_dump(mode="json")


@pytest.fixture
def run() -> RunBlock:
    return run_block


@pytest.fixture
async def make_pilot(settings_factory) -> AsyncIterator[Callable[..., Awaitable[Pilot]]]:
    """Open a Pilot with custom settings (set provider env vars before calling it)."""
    opened: list[Pilot] = []

    async def make(**overrides: Any) -> Pilot:
        pilot = await Pilot.open(settings_factory(**overrides))
        opened.append(pilot)
        return pilot

    yield make
    for pilot in opened:
        await pilot.close()


@pytest.fixture
def other() -> Iterator[LocalHTTPServer]:
    """Another host a provider test allows; the credential must never reach it."""
    with elsewhere() as srv:
        yield srv
