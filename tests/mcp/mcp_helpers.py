"""Shared constants and helpers of the MCP tests (importable; conftest is not)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.bp_database import database_env

EMAIL_BLOCK_ID = "4335878a-394e-4e67-adf2-919877ff49ae"
CALCULATOR_BLOCK_ID = "b1ab9b19-67a6-406d-abf5-2dba76d00c79"
PUBLIC_URL = "https://blockpilot.example"
SETUP_BASE = f"{PUBLIC_URL}/setup"
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
"""What a streamable-HTTP client sends with every POST."""


def initialize(
    version: str = "2025-11-25", capabilities: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A raw JSON-RPC ``initialize`` request."""
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": capabilities or {},
            "clientInfo": {"name": "raw", "version": "0"},
        },
    }


def server_env(home: Path, key: str) -> dict[str, str]:
    """The environment of a spawned blockpilot: this one without BLOCKPILOT_*, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPILOT_")}
    env.update({"BLOCKPILOT_HOME": str(home), "BLOCKPILOT_ENCRYPTION_KEYS": key})
    env.update(database_env())  # the test's PostgreSQL database, in the PostgreSQL pass
    return env
