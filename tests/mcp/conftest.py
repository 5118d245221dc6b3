"""Fixtures for the MCP tests: a real Pilot (SQLite in tmp) behind the MCP server."""

from __future__ import annotations

from typing import Any

import pytest

from blockpilot.pilot import Pilot
from tests.mcp.mcp_helpers import SETUP_BASE


@pytest.fixture
def setup_urls(pilot: Pilot) -> str:
    """Make missing credentials carry a setup_url, as they do where the service runs."""

    def build(user_id: str, block_id: str, entry: dict[str, Any]) -> str:
        return f"{SETUP_BASE}/{entry['provider']}?block={block_id}"

    pilot.set_setup_url_builder(build)
    return SETUP_BASE
