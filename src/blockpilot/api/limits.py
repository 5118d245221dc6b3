"""The API's side of the per-user limits (``blockpilot.limits``): FastAPI dependencies that
spend a request of the user's budget, and the app's limiter."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, Request

from blockpilot.api.deps import CurrentUser
from blockpilot.errors import RateLimitedError
from blockpilot.limits import RateLimiter, app_limiter


def get_limiter(request: Request) -> RateLimiter:
    """The limiter of the request's app (see :func:`app_limiter`)."""
    return app_limiter(request.app)


async def _limiter_dependency(request: Request) -> RateLimiter:
    # async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool.
    return get_limiter(request)


LimiterDep = Annotated[RateLimiter, Depends(_limiter_dependency)]


async def spend_request(limiter: RateLimiter, user_id: str) -> None:
    """Spend one request of the user's budget; 429 with ``Retry-After`` when none is left."""
    decision = await limiter.acquire(user_id)
    if not decision.allowed:
        retry_after = max(1, math.ceil(decision.retry_after))
        raise RateLimitedError(
            "Too many requests: over this user's rate limit; retry after "
            f"{retry_after} second{'s' if retry_after != 1 else ''}",
            retry_after=retry_after,
            details={"retry_after_seconds": retry_after},
        )


async def rate_limit(user: CurrentUser, limiter: LimiterDep) -> None:
    """:func:`spend_request` as a dependency of every authenticated route."""
    await spend_request(limiter, user.id)


__all__ = ["LimiterDep", "RateLimiter", "app_limiter", "get_limiter", "rate_limit", "spend_request"]
