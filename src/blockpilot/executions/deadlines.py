"""Time limits of tool calls and block runs: ``asyncio.timeout`` semantics, one timer per loop.

``asyncio.timeout`` schedules a timer for each scope and cancels it on the way out: ~4.7 µs
per scope, two per run_block call (the tool's limit and the block's), and a heap of
cancelled timers behind a burst of runs (docs/performance.md). Here every scope of an event
loop shares one timer, armed for the earliest deadline in force: a scope that ends before
it (nearly every one) costs a set insertion and removal, and a new scope re-arms the timer
only when its deadline is the earliest. When the timer fires, every scope that is due is
expired exactly as ``asyncio.timeout`` expires its one: the task is cancelled, and the
scope turns that cancellation into :class:`TimeoutError` on its way out.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from types import TracebackType

_CREATED, _ENTERED, _EXPIRING, _EXPIRED, _EXITED = range(5)


class _Timer:
    """The scopes in force on one event loop and the one timer armed for the earliest."""

    __slots__ = ("__weakref__", "scopes", "handle", "armed_for")

    def __init__(self) -> None:
        self.scopes: set[Deadline] = set()
        self.handle: asyncio.TimerHandle | None = None
        self.armed_for = float("inf")

    def add(self, scope: Deadline, loop: asyncio.AbstractEventLoop) -> None:
        self.scopes.add(scope)
        if scope.when < self.armed_for:
            if self.handle is not None:
                self.handle.cancel()
            self.handle = loop.call_at(scope.when, self._fire, loop)
            self.armed_for = scope.when

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        # A scope that ended meanwhile left its deadline behind: the timer then fires for
        # nothing and is armed again for the earliest deadline still in force, if any.
        self.handle, self.armed_for = None, float("inf")
        now = loop.time()
        due = [scope for scope in self.scopes if scope.when <= now]
        for scope in due:
            self.scopes.discard(scope)
            scope._expire()
        if self.scopes:
            earliest = min(scope.when for scope in self.scopes)
            self.handle = loop.call_at(earliest, self._fire, loop)
            self.armed_for = earliest


# Each loop's timer, held weakly both ways: a timer refers to its loop (through its handle
# and its scopes' tasks), so a strong value would keep every loop ever used alive. A timer
# lives while its handle is armed (the loop's schedule holds it) or a scope is in force.
_timers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.ref[_Timer]] = (
    weakref.WeakKeyDictionary()
)
_timers_lock = threading.Lock()
# The last loop asked about and its timer, held: one process mostly runs one loop.
_last: tuple[weakref.ref[asyncio.AbstractEventLoop], _Timer] | None = None


def _timer_of(loop: asyncio.AbstractEventLoop) -> _Timer:
    global _last
    last = _last
    if last is not None and last[0]() is loop:
        return last[1]
    with _timers_lock:
        known = _timers.get(loop)
        timer = known() if known is not None else None
        if timer is None:
            timer = _Timer()
            _timers[loop] = weakref.ref(timer)
        _last = (weakref.ref(loop), timer)
    return timer


class Deadline:
    """A time limit on the code in its ``with`` block, which must run in an asyncio task.

    As ``asyncio.timeout``: when the limit passes, the task is cancelled and the block's
    :class:`asyncio.CancelledError` leaves it as :class:`TimeoutError` (a cancellation
    from elsewhere stays a cancellation); :meth:`expired` tells this scope's timeout from a
    ``TimeoutError`` the code raised itself. Nested scopes each fire at their own limit. A
    plain ``with``: entering and leaving need no await.
    """

    __slots__ = ("when", "_loop", "_task", "_cancelling", "_state", "_timer")

    def __init__(self, when: float, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """*when* is the clock of *loop* (``loop.time()``; the running loop when None) at
        which the limit passes."""
        self.when = when
        self._loop = loop
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._state = _CREATED
        self._timer: _Timer | None = None

    def __enter__(self) -> Deadline:
        loop = self._loop or asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("Deadline should be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._state = _ENTERED
        self._timer = _timer_of(loop)
        self._timer.add(self, loop)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state == _EXPIRING:
            self._state = _EXPIRED
            assert self._task is not None
            # Only a cancellation no one else asked for is ours to turn into a timeout.
            cancelled = exc_type is not None and issubclass(exc_type, asyncio.CancelledError)
            if self._task.uncancel() <= self._cancelling and cancelled:
                raise TimeoutError from exc
            return
        self._state = _EXITED
        if self._timer is not None:
            self._timer.scopes.discard(self)

    def expired(self) -> bool:
        """Whether this scope's limit passed (and it cancelled the code it guards)."""
        return self._state in (_EXPIRING, _EXPIRED)

    def _expire(self) -> None:
        assert self._task is not None
        self._task.cancel()
        self._state = _EXPIRING


def deadline_in(seconds: float) -> Deadline:
    """A :class:`Deadline` *seconds* from now on the running loop's clock."""
    loop = asyncio.get_running_loop()
    return Deadline(loop.time() + seconds, loop)


__all__ = ["Deadline", "deadline_in"]
