"""Fixtures for the framework adapter tests: a Pilot whose LLM block calls a fake Anthropic,
setup links that name their user, and two users."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.testing import FakeAnthropic
from tests.frameworks.scenario import KEYS


@pytest.fixture
def anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_keys=set(KEYS.values())) as server:
        yield server


@pytest.fixture
def pilot_settings(
    settings_factory: Any, monkeypatch: pytest.MonkeyPatch, anthropic: FakeAnthropic
) -> Settings:
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_ANTHROPIC_BASE_URL", anthropic.origin)
    return settings_factory()


@pytest.fixture(autouse=True)
def _setup_links(pilot: Pilot) -> None:
    pilot.set_setup_url_builder(
        lambda user_id, block_id, entry: f"https://bp.example/connect/{user_id}/{entry['provider']}"
    )
