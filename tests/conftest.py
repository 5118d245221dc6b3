"""Shared fixtures: a real Pilot on a temporary SQLite database, and two users."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from blockpilot.credentials.crypto import KeyRing
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.storage.users import User


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def settings_factory(home: Path, monkeypatch: pytest.MonkeyPatch):
    """Build Settings for the temp home; tests pass overrides (e.g. http_allowed_hosts)."""
    # Keep the developer's own environment out of the tests.
    import os

    for name in list(os.environ):
        if name.startswith("BLOCKPILOT_"):
            monkeypatch.delenv(name)
    key = KeyRing.generate_key()

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {"home": home, "encryption_keys": (key,)}
        values.update(overrides)
        return Settings.load(**values)

    return make


@pytest.fixture
def settings(settings_factory) -> Settings:
    return settings_factory(http_allowed_hosts=("127.0.0.1",))


@pytest.fixture
async def pilot(settings: Settings) -> AsyncIterator[Pilot]:
    p = await Pilot.open(settings)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def alice(pilot: Pilot) -> User:
    user, _ = await pilot.users.create("alice")
    return user


@pytest.fixture
async def bob(pilot: Pilot) -> User:
    user, _ = await pilot.users.create("bob")
    return user
