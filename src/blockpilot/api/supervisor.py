"""The parent process of ``blockpilot serve --workers N``: keeps N workers serving.

A worker can die while the server runs (the kernel's out-of-memory killer, a crash in an
extension, an operator's ``kill``); without a replacement the server would serve on with
fewer cores until restarted. Forking is only safe from a process without an event loop,
threads or open database connections, so the parent serves nothing: it forks the workers,
replaces any that dies, and passes stop signals on (docs/deployment.md#workers).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, NoReturn

logger = logging.getLogger(__name__)

QUICK_EXIT_SECONDS = 10.0
"""A worker that exits sooner than this after its start is replaced after a delay that doubles
with each such exit (from :data:`FIRST_RESTART_DELAY` up to :data:`MAX_RESTART_DELAY`), so a
worker that cannot start (database down) does not make the parent fork in a tight loop."""
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_WATCHED_SIGNALS = {*_STOP_SIGNALS, signal.SIGCHLD}


class Supervisor:
    """Fork *workers* processes that each call *serve* (which returns an exit code) and keep
    that many running until SIGTERM or SIGINT; then stop them gracefully and return."""

    def __init__(self, workers: int, serve: Callable[[], int]) -> None:
        self._wanted = workers
        self._serve = serve
        self._started_at: dict[int, float] = {}  # pid of each running worker -> its start
        self._delay = 0.0
        self._restart_at: float | None = None  # when to start the missing workers
        self._stop_signals: list[int] = []  # received, not yet passed on
        self._stopping = False
        self._previous_handlers: dict[int, Any] = {}
        self._wakeup_pipe: tuple[int, int] = (-1, -1)

    def run(self) -> None:
        """Serve until stopped; returns once every worker has exited."""
        with self._signals() as wakeup:
            try:
                for _ in range(self._wanted):
                    self._start_worker()
                logger.info("server workers started", extra={"workers": self._wanted})
                while self._started_at or not self._stopping:
                    self._wait(wakeup)
                    self._pass_on_stop_signals()
                    self._reap()
                    self._restart_missing()
            finally:
                self._stop_all()

    def _wait(self, wakeup: int) -> None:
        """Sleep until a signal arrives (SIGCHLD included) or a restart is due."""
        timeout = None
        if self._restart_at is not None and not self._stopping:
            timeout = max(0.0, self._restart_at - time.monotonic())
        readable, _, _ = select.select([wakeup], [], [], timeout)
        if readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wakeup, 512)

    def _pass_on_stop_signals(self) -> None:
        # The first stop becomes SIGTERM for every worker (a graceful drain, even when a
        # terminal's Ctrl-C also reached each worker directly); a later SIGINT is passed on
        # as it is, which makes uvicorn stop at once.
        for signum in self._stop_signals:
            if not self._stopping:
                self._stopping = True
                self._signal_workers(signal.SIGTERM)
            elif signum == signal.SIGINT:
                self._signal_workers(signal.SIGINT)
        self._stop_signals.clear()

    def _signal_workers(self, signum: int) -> None:
        for pid in self._started_at:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            started = self._started_at.pop(pid, None)
            if started is None or self._stopping:
                continue
            self._schedule_restart(pid, status, time.monotonic() - started)

    def _schedule_restart(self, pid: int, status: int, lived: float) -> None:
        if lived >= QUICK_EXIT_SECONDS:
            self._delay = 0.0
        else:
            self._delay = min(MAX_RESTART_DELAY, max(FIRST_RESTART_DELAY, self._delay * 2))
        code = os.waitstatus_to_exitcode(status)
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        logger.warning(
            "server worker exited; starting another",
            extra={"worker_pid": pid, "exit": how, "restart_in_seconds": self._delay},
        )
        due = time.monotonic() + self._delay
        self._restart_at = due if self._restart_at is None else min(self._restart_at, due)

    def _restart_missing(self) -> None:
        if self._stopping or self._restart_at is None or time.monotonic() < self._restart_at:
            return
        self._restart_at = None
        while len(self._started_at) < self._wanted:
            self._start_worker()

    def _start_worker(self) -> None:
        parent = os.getpid()
        # Signals wait until the child has its own handlers (a stop meant for it in between
        # would otherwise only reach this process's handler, in the child's memory).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                self._become_worker(parent, mask)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self._started_at[pid] = time.monotonic()

    def _become_worker(self, parent: int, mask: set[int | signal.Signals]) -> NoReturn:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            _restore_handlers(self._previous_handlers)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            for end in self._wakeup_pipe:
                os.close(end)
            _die_with_parent(parent)
            code = self._serve()
        except BaseException:  # noqa: BLE001 - the worker's exit code says it
            logger.exception("server worker failed")
        finally:
            logging.shutdown()
            os._exit(code)

    def _stop_all(self) -> None:
        """SIGTERM to the workers still running, then wait for each (they drain their runs)."""
        self._signal_workers(signal.SIGTERM)
        for pid in list(self._started_at):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            del self._started_at[pid]

    @contextmanager
    def _signals(self) -> Iterator[int]:
        """Note SIGTERM/SIGINT and wake :meth:`_wait` on them and on SIGCHLD, through a pipe
        (``signal.set_wakeup_fd``): no polling while nothing happens."""
        read_end, write_end = self._wakeup_pipe = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)

        def note_stop(signum: int, frame: FrameType | None) -> None:
            self._stop_signals.append(signum)

        def note_child(signum: int, frame: FrameType | None) -> None:
            pass  # the wake-up byte is the point; _reap finds out which

        self._previous_handlers = {
            signal.SIGCHLD: signal.signal(signal.SIGCHLD, note_child),
            **{sig: signal.signal(sig, note_stop) for sig in _STOP_SIGNALS},
        }
        previous_wakeup = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        try:
            yield read_end
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            _restore_handlers(self._previous_handlers)
            os.close(read_end)
            os.close(write_end)


def _restore_handlers(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _die_with_parent(parent: int) -> None:
    """Linux: this process gets SIGKILL when its parent dies (even by SIGKILL); if the parent
    died before that was set, exit now."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            pr_set_pdeathsig = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)
