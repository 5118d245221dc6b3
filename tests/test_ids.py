"""Execution ids' random part (blockpilot.ids.random_hex64): 64 bits from the OS, read in
batches, never handed out twice — across threads, and in a child process after fork."""

from __future__ import annotations

import os
import re
import threading

import pytest

from blockpilot.ids import SyntheticIds, random_hex64


def test_words_are_16_hex_digits_and_differ_beyond_one_batch() -> None:
    words = [random_hex64() for _ in range(2_000)]  # several batches of 256
    assert all(re.fullmatch(r"[0-9a-f]{16}", w) for w in words)
    assert len(set(words)) == len(words)


def test_threads_taking_words_at_once_never_get_the_same_one() -> None:
    taken: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(len(taken))

    def take(into: list[str]) -> None:
        start.wait()
        into.extend(random_hex64() for _ in range(1_000))

    threads = [threading.Thread(target=take, args=(into,)) for into in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    words = [w for into in taken for w in into]
    assert len(words) == 8_000 and len(set(words)) == 8_000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_does_not_reuse_the_parents_batch() -> None:
    random_hex64()  # the parent holds a batch with words left
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, "".join(random_hex64() for _ in range(100)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_text = pipe.read()
    os.waitpid(pid, 0)
    child = {child_text[i : i + 16] for i in range(0, len(child_text), 16)}
    parent = {random_hex64() for _ in range(100)}
    assert len(child) == 100
    assert not child & parent


def test_run_ids_keep_their_shape() -> None:
    ids = SyntheticIds.for_run("s-1", "b-1")
    assert ids.graph_id == ids.graph_exec_id == "copilot-session-s-1"
    assert ids.node_id == "copilot-node-b-1"
    assert re.fullmatch(r"copilot-s-1-[0-9a-f]{16}", ids.node_exec_id)
    assert ids.graph_version == 1
