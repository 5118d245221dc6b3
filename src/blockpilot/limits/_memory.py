"""Per-user limits in this process's memory, and the interface every limiter has."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from blockpilot.errors import RateLimitedError
from blockpilot.settings import Settings

WINDOW_SECONDS = 60.0
"""The rate limit is a budget per this many seconds."""

CONCURRENCY_RETRY_AFTER_SECONDS = 1


def too_many_in_flight(max_concurrent: int) -> RateLimitedError:
    """The error for a call over a user's cap of calls in flight (either limiter)."""
    return RateLimitedError(
        f"Too many tool calls in flight: at most {max_concurrent} per user run "
        "at once; retry when one has finished",
        retry_after=CONCURRENCY_RETRY_AFTER_SECONDS,
        details={
            "max_concurrent_runs": max_concurrent,
            "retry_after_seconds": CONCURRENCY_RETRY_AFTER_SECONDS,
        },
    )


"""``Retry-After`` of a refused tool call: a slot frees whenever a run ends, so soon."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one request for budget.

    Attributes:
        allowed: The request may go ahead (its cost has been spent).
        retry_after: Seconds until a request would be allowed again; 0 when allowed.
    """

    allowed: bool
    retry_after: float = 0.0


class RateLimiter(Protocol):
    """Per-user limits: a request rate and a cap on concurrent tool calls."""

    async def acquire(self, user_id: str) -> Decision:
        """Spend one request of *user_id*'s budget, if there is one left."""
        ...

    def concurrency(self, user_id: str) -> AbstractAsyncContextManager[None]:
        """Hold one of *user_id*'s tool-call slots for the ``async with`` block.

        Raises:
            RateLimitedError: Every slot of the user is taken (on entering).
        """
        ...


class InProcessRateLimiter:
    """Token buckets and slot counters per user, in this process's memory.

    Each user's bucket holds up to ``per_minute`` tokens and refills continuously at
    ``per_minute / 60`` tokens a second, so a user may burst up to a minute's budget and
    then goes on at the steady rate. Buckets that have refilled completely are dropped,
    so memory follows the number of recently active users, not of all users.

    Args:
        per_minute: Requests per user per minute; 0 turns the rate limit off.
        max_concurrent: Tool calls one user may have in flight; 0 turns the cap off.
        clock: Monotonic seconds (tests pass a fake clock).
    """

    def __init__(
        self,
        per_minute: int,
        max_concurrent: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 0 or max_concurrent < 0:
            raise ValueError("limits must be >= 0 (0 means no limit)")
        self.per_minute = per_minute
        self.max_concurrent = max_concurrent
        self._clock = clock
        self._rate = per_minute / WINDOW_SECONDS  # tokens per second
        self._buckets: dict[str, tuple[float, float]] = {}  # user -> (tokens, as of)
        self._running: dict[str, int] = {}
        self._next_prune = clock() + WINDOW_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> InProcessRateLimiter:
        """``BLOCKPILOT_RATE_LIMIT_PER_MINUTE`` and ``BLOCKPILOT_MAX_CONCURRENT_RUNS_PER_USER``."""
        return cls(settings.rate_limit_per_minute, settings.max_concurrent_runs_per_user)

    async def acquire(self, user_id: str) -> Decision:
        if self.per_minute == 0:
            return Decision(True)
        now = self._clock()
        self._prune(now)
        tokens = self._tokens(user_id, now)
        if tokens >= 1.0:
            self._buckets[user_id] = (tokens - 1.0, now)
            return Decision(True)
        self._buckets[user_id] = (tokens, now)
        return Decision(False, retry_after=(1.0 - tokens) / self._rate)

    def concurrency(self, user_id: str) -> AbstractAsyncContextManager[None]:
        # A plain class, not @asynccontextmanager: every tool call enters one, and a
        # generator-based context manager costs a few µs more (docs/performance.md).
        return _Slot(self, user_id)

    def _take_slot(self, user_id: str) -> bool:
        if self.max_concurrent == 0:
            return False
        running = self._running.get(user_id, 0)
        if running >= self.max_concurrent:
            raise too_many_in_flight(self.max_concurrent)
        self._running[user_id] = running + 1
        return True

    def _free_slot(self, user_id: str) -> None:
        left = self._running[user_id] - 1
        if left:
            self._running[user_id] = left
        else:
            del self._running[user_id]

    def running(self, user_id: str) -> int:
        """Tool calls of *user_id* in flight now."""
        return self._running.get(user_id, 0)

    def _tokens(self, user_id: str, now: float) -> float:
        tokens, as_of = self._buckets.get(user_id, (float(self.per_minute), now))
        return min(float(self.per_minute), tokens + max(0.0, now - as_of) * self._rate)

    def _prune(self, now: float) -> None:
        if now < self._next_prune:
            return
        self._next_prune = now + WINDOW_SECONDS
        full = [user for user in self._buckets if self._tokens(user, now) >= self.per_minute]
        for user in full:
            del self._buckets[user]


class _Slot:
    """One of a user's tool-call slots (none when the cap is off) for an ``async with``."""

    __slots__ = ("_held", "_limiter", "_user_id")

    def __init__(self, limiter: InProcessRateLimiter, user_id: str) -> None:
        self._limiter = limiter
        self._user_id = user_id
        self._held = False

    async def __aenter__(self) -> None:
        self._held = self._limiter._take_slot(self._user_id)

    async def __aexit__(self, *exc_info: object) -> None:
        if self._held:
            self._held = False
            self._limiter._free_slot(self._user_id)
