"""Fixtures for the framework adapter tests: a Pilot whose LLM block calls a fake Anthropic,
setup and approval links at a public URL, and two users."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from blockpilot.settings import Settings
from blockpilot.testing import FakeAnthropic
from tests.frameworks.scenario import KEYS, PUBLIC_URL


@pytest.fixture
def anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_keys=set(KEYS.values())) as server:
        yield server


@pytest.fixture
def pilot_settings(
    settings_factory: Any, monkeypatch: pytest.MonkeyPatch, anthropic: FakeAnthropic
) -> Settings:
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_ANTHROPIC_BASE_URL", anthropic.origin)
    # Answers carry setup and approval links, as where the service runs.
    return settings_factory(public_url=PUBLIC_URL)
