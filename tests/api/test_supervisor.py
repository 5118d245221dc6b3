"""The parent of ``serve --workers N`` keeps N workers running and stops them together.

Real forks of this test process; each worker runs a small function instead of a server (the
whole server under the supervisor is in tests/api/test_serve_workers.py).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from blockpilot.api.supervisor import FIRST_RESTART_DELAY, Supervisor

WAIT_SECONDS = 60  # an upper bound for a busy machine, not a speed claim


def _stop_when(condition: Callable[[], bool]) -> threading.Thread:
    """SIGTERM to this process (the supervisor's handler takes it) once *condition* holds."""

    def watch() -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture(autouse=True)
def _main_thread_only() -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")


def test_a_worker_that_keeps_exiting_is_restarted_after_growing_delays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    starts = tmp_path / "starts"

    def serve() -> int:  # a worker that cannot start: exits at once with code 3
        with starts.open("a") as out:
            out.write(f"{time.monotonic()}\n")
        return 3

    watcher = _stop_when(lambda: len(_lines(starts)) >= 4)
    with caplog.at_level(logging.WARNING, logger="blockpilot.api.supervisor"):
        Supervisor(1, serve).run()
    watcher.join()

    times = [float(line) for line in _lines(starts)]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    delays = [FIRST_RESTART_DELAY * 2**i for i in range(len(gaps))]  # 0.5, 1, 2, ...
    assert all(gap >= delay for gap, delay in zip(gaps, delays, strict=True)), (gaps, delays)
    exits = [r for r in caplog.records if r.getMessage().startswith("server worker exited")]
    assert [r.__dict__["exit"] for r in exits[:3]] == ["exit code 3"] * 3
    assert [r.__dict__["restart_in_seconds"] for r in exits[:3]] == delays[:3]


def test_a_stop_reaches_every_worker_and_run_returns_when_they_have_exited(
    tmp_path: Path,
) -> None:
    ready = tmp_path / "ready"
    stopped = tmp_path / "stopped"

    def serve() -> int:  # a worker that serves until SIGTERM, then drains and exits 0
        got: list[int] = []
        signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
        with ready.open("a") as out:
            out.write(f"{os.getpid()}\n")
        deadline = time.monotonic() + WAIT_SECONDS
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
        with stopped.open("a") as out:
            out.write(f"{os.getpid()}\n")
        return 0

    watcher = _stop_when(lambda: len(_lines(ready)) >= 3)
    Supervisor(3, serve).run()
    watcher.join()

    assert len(set(_lines(ready))) == 3
    assert sorted(_lines(stopped)) == sorted(_lines(ready))  # each drained before run returned
    for pid in map(int, _lines(ready)):  # each reaped: no zombie left behind
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
