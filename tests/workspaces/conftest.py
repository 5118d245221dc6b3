"""Fixtures for workspace tests (the blob backends they run on: tests/workspace_backends.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from blockpilot.pilot import Pilot


@pytest.fixture
async def make_pilot(settings_factory) -> AsyncIterator[Callable[..., Awaitable[Pilot]]]:
    """Open a Pilot with custom settings (e.g. max_file_bytes)."""
    opened: list[Pilot] = []

    async def make(**overrides: Any) -> Pilot:
        pilot = await Pilot.open(settings_factory(**overrides))
        opened.append(pilot)
        return pilot

    yield make
    for pilot in opened:
        await pilot.close()


@pytest.fixture
async def alice_files(pilot, alice):
    workspace = await pilot.workspaces.get_or_create_workspace(alice.id)
    return pilot.workspaces.for_workspace(workspace)


@pytest.fixture
async def bob_files(pilot, bob):
    workspace = await pilot.workspaces.get_or_create_workspace(bob.id)
    return pilot.workspaces.for_workspace(workspace)
