"""Per-user request rate limits and tool-call concurrency caps, behind a small interface.

:class:`RateLimiter` is what the API needs from a limiter: :meth:`~RateLimiter.acquire` spends
one request of a user's budget (every authenticated request), and
:meth:`~RateLimiter.concurrency` holds one of a user's tool-call slots (``POST /tools/*``).
Over a limit the API answers 429 with ``Retry-After`` (see
:class:`~blockpilot.errors.RateLimitedError` in the error table); the setup pages spend the
same budget.

:class:`InProcessRateLimiter` keeps its state in this process: with several server
processes each one enforces the limits on its own share of the traffic.
:class:`RedisRateLimiter` keeps it in Redis, so the limits hold across processes
(``docs/deployment.md``); :func:`limiter_for` picks one from the settings.
:class:`MachineRateLimiter` keeps it in a SQLite file of the home, shared by the workers of
``blockpilot serve --workers N`` on one machine when there is no Redis.
"""

from __future__ import annotations

from typing import Any

from blockpilot.limits._machine import MachineRateLimiter
from blockpilot.limits._memory import (
    CONCURRENCY_RETRY_AFTER_SECONDS,
    WINDOW_SECONDS,
    Decision,
    InProcessRateLimiter,
    RateLimiter,
)
from blockpilot.limits._redis import SLOT_LEASE_SECONDS, RedisRateLimiter
from blockpilot.settings import Settings


def limiter_for(settings: Settings) -> RateLimiter:
    """The limiter *settings* call for: in Redis when ``REDIS_URL`` is set, else in-process."""
    if settings.redis_url:
        return RedisRateLimiter.from_settings(settings)
    return InProcessRateLimiter.from_settings(settings)


def app_limiter(app: Any) -> RateLimiter:
    """*app*'s limiter: the one given to ``create_app``, else one for the Pilot's settings."""
    limiter: RateLimiter | None = getattr(app.state, "limiter", None)
    if limiter is None:
        limiter = limiter_for(app.state.pilot.settings)
        app.state.limiter = limiter
    return limiter


__all__ = [
    "CONCURRENCY_RETRY_AFTER_SECONDS",
    "SLOT_LEASE_SECONDS",
    "WINDOW_SECONDS",
    "Decision",
    "InProcessRateLimiter",
    "MachineRateLimiter",
    "RateLimiter",
    "RedisRateLimiter",
    "app_limiter",
    "limiter_for",
]
