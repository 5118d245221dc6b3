"""Shared constants and helpers of the MCP tests (importable; conftest is not)."""

from __future__ import annotations

import os
from pathlib import Path

from bp_database import database_env

EMAIL_BLOCK_ID = "4335878a-394e-4e67-adf2-919877ff49ae"
CALCULATOR_BLOCK_ID = "b1ab9b19-67a6-406d-abf5-2dba76d00c79"
SETUP_BASE = "https://blockpilot.example/setup"


def server_env(home: Path, key: str) -> dict[str, str]:
    """The environment of a spawned blockpilot: this one without BLOCKPILOT_*, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPILOT_")}
    env.update({"BLOCKPILOT_HOME": str(home), "BLOCKPILOT_ENCRYPTION_KEYS": key})
    env.update(database_env())  # the test's PostgreSQL database, in the PostgreSQL pass
    return env
