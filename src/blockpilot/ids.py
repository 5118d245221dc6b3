"""Identifiers: UUIDs for stored entities and the synthetic graph ids of copilot runs."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass


def new_id() -> str:
    """A fresh random UUID string (36 characters)."""
    return str(uuid.uuid4())


def is_uuid(value: str) -> bool:
    """True when *value* is a canonical 36-character UUID string."""
    if len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class SyntheticIds:
    """Graph-shaped ids for a block run outside any graph (docs/architecture.md, run_block step 11).

    Each chat session is treated as one agent with one continuous run, so blocks that
    scope memory to a graph run become scoped to the session.
    """

    graph_id: str
    graph_exec_id: str
    node_id: str
    node_exec_id: str
    graph_version: int = 1

    @classmethod
    def for_run(cls, session_id: str, block_id: str) -> SyntheticIds:
        graph = f"copilot-session-{session_id}"
        return cls(
            graph_id=graph,
            graph_exec_id=graph,
            node_id=f"copilot-node-{block_id}",
            # 64 random bits: the id is the execution record's key, and with 32 a session's
            # runs would collide by even odds after ~77,000 (docs/architecture.md).
            node_exec_id=f"copilot-{session_id}-{os.urandom(8).hex()}",
        )
