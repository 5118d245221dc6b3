"""Fixtures for the MCP tests: a real Pilot (SQLite in tmp) behind the MCP server."""

from __future__ import annotations

import pytest

from blockpilot.settings import Settings
from tests.mcp.mcp_helpers import PUBLIC_URL, SETUP_BASE


@pytest.fixture
def pilot_settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The root settings; with ``public_url`` set for a test that asks for ``setup_urls``, so
    that its missing credentials carry a setup_url, as they do where the service runs."""
    if "setup_urls" in request.fixturenames:
        return settings.model_copy(update={"public_url": PUBLIC_URL})
    return settings


@pytest.fixture
def setup_urls() -> str:
    """Where this test's setup links start (see ``pilot_settings``)."""
    return SETUP_BASE
