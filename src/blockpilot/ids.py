"""Identifiers: UUIDs for stored entities and the synthetic graph ids of copilot runs."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

# Random 64-bit words, hex, read from the OS 256 at a time: one getrandom per run cost more
# than the rest of making a run's ids (docs/performance.md). Taking one is a C-level next(),
# so threads never get the same word; a child process after fork() starts a fresh batch.
_WORDS_PER_READ = 256
_words: Iterator[str] = iter(())
_words_lock = threading.Lock()


def _forget_words() -> None:
    global _words
    _words = iter(())


os.register_at_fork(after_in_child=_forget_words)


def random_hex64() -> str:
    """16 hex digits of 64 random bits from the OS (``os.urandom``), read in batches."""
    global _words
    try:
        return next(_words)
    except StopIteration:
        pass
    with _words_lock:
        try:
            return next(_words)  # another thread read a batch meanwhile
        except StopIteration:
            text = os.urandom(8 * _WORDS_PER_READ).hex()
            words = iter([text[i : i + 16] for i in range(0, len(text), 16)])
            word = next(words)
            _words = words
            return word


def random_hex128() -> str:
    """32 hex digits of 128 random bits (as a UUID's hex): two words of :func:`random_hex64`."""
    return random_hex64() + random_hex64()


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
        # graph_id, graph_exec_id, node_id, node_exec_id. 64 random bits: the id is the
        # execution record's key, and with 32 a session's runs would collide by even odds
        # after ~77,000 (docs/architecture.md).
        return cls(
            graph, graph, f"copilot-node-{block_id}", f"copilot-{session_id}-{random_hex64()}"
        )
