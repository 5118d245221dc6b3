"""Open MCP streamable-HTTP sessions per user: a cap for each user, and idle expiry.

The MCP SDK caps the open sessions of a session manager as a whole (10,000), so one API
key that keeps opening sessions fills the pool and everybody else's ``initialize`` gets a
503. :class:`SessionLedger` gives every user a cap of their own
(``BLOCKPILOT_MCP_MAX_SESSIONS_PER_USER``): the user over it gets a 429 (a
:class:`~blockpilot.errors.TooManySessionsError`), nobody else notices. Sessions with no
request in flight for ``BLOCKPILOT_MCP_SESSION_IDLE_SECONDS`` are closed.

Per process, by design: a streamable-HTTP session lives in the memory of the process that
opened it (the other workers forward its requests there:
:mod:`blockpilot.mcp.worker_sessions`), so the pool being protected is that process's, and
so is the count. With N processes a user may hold up to N × the cap in all; no process's
pool can be filled by one user. See ``docs/mcp.md``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from blockpilot.errors import TooManySessionsError


@dataclass(slots=True)
class _Session:
    user_id: str
    in_flight: int
    last_active: float


class SessionLedger:
    """Who holds which open session in this process, and since when each is idle.

    Args:
        max_per_user: Open sessions (and sessions being opened) one user may hold;
            0 means no cap.
        idle_seconds: A session with no request in flight for this long is expired.
        clock: Monotonic seconds (tests may pass their own).
    """

    def __init__(
        self,
        max_per_user: int,
        idle_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_per_user < 0 or idle_seconds <= 0:
            raise ValueError("max_per_user must be >= 0 and idle_seconds > 0")
        self.max_per_user = max_per_user
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        self._opening: Counter[str] = Counter()

    def held_by(self, user_id: str) -> int:
        """Sessions *user_id* holds open or is opening."""
        open_ = sum(1 for s in self._sessions.values() if s.user_id == user_id)
        return open_ + self._opening[user_id]

    def reserve(self, user_id: str) -> Reservation:
        """Hold a place for a session *user_id* is opening (see :class:`Reservation`).

        Raises:
            TooManySessionsError: The user already holds ``max_per_user`` sessions.
        """
        if self.max_per_user and self.held_by(user_id) >= self.max_per_user:
            raise TooManySessionsError(
                f"Too many open MCP sessions: this user already has {self.max_per_user} "
                "(BLOCKPILOT_MCP_MAX_SESSIONS_PER_USER). Close one (HTTP DELETE with its "
                f"Mcp-Session-Id) or wait until an unused one expires "
                f"({self.idle_seconds:g} s without requests).",
                retry_after=self.idle_seconds,
                details={"max_sessions_per_user": self.max_per_user},
            )
        self._opening[user_id] += 1
        return Reservation(self, user_id)

    def _opened(self, session_id: str, user_id: str) -> None:
        self._sessions[session_id] = _Session(user_id, 1, self._clock())

    def _release(self, user_id: str) -> None:
        self._opening[user_id] -= 1
        if not self._opening[user_id]:
            del self._opening[user_id]

    @contextmanager
    def in_use(self, session_id: str, user_id: str) -> Iterator[None]:
        """Mark a request of *user_id* on *session_id* in flight (another user's does not
        count: their request is refused and must not keep the session alive)."""
        session = self._sessions.get(session_id)
        if session is None or session.user_id != user_id:
            yield
            return
        session.in_flight += 1
        try:
            yield
        finally:
            self._finished(session_id)

    def _finished(self, session_id: str) -> None:
        session = self._sessions.get(session_id)
        if session is not None:
            session.in_flight = max(0, session.in_flight - 1)
            session.last_active = self._clock()

    def forget(self, session_id: str) -> None:
        """The session is gone (closed by its client, expired, unknown to the SDK)."""
        self._sessions.pop(session_id, None)

    def expire_idle(self, user_id: str | None = None) -> list[tuple[str, str]]:
        """Forget and return ``(session_id, user_id)`` of every idle-expired session (of
        *user_id* only, if given): the caller closes them."""
        deadline = self._clock() - self.idle_seconds
        expired = [
            (session_id, s.user_id)
            for session_id, s in self._sessions.items()
            if s.in_flight == 0
            and s.last_active <= deadline
            and (user_id is None or s.user_id == user_id)
        ]
        for session_id, _ in expired:
            self.forget(session_id)
        return expired


class Reservation:
    """A place held for a session being opened: a context manager around the opening
    request. Call :meth:`opened` when the answer names the new session; on exit the place
    is released either way (a refused ``initialize`` opens nothing)."""

    def __init__(self, ledger: SessionLedger, user_id: str) -> None:
        self._ledger = ledger
        self._user_id = user_id
        self._opened: list[str] = []

    def opened(self, session_id: str) -> None:
        self._ledger._opened(session_id, self._user_id)
        self._opened.append(session_id)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._ledger._release(self._user_id)
        for session_id in self._opened:  # the opening request is no longer in flight
            self._ledger._finished(session_id)


__all__ = ["Reservation", "SessionLedger"]
