"""The signed-in user's reviews: calls waiting for a person's decision (docs/approvals.md)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from blockpilot.api.deps import CurrentUser, PilotDep
from blockpilot.api.routes import error_responses
from blockpilot.errors import ConflictError, NotFoundError
from blockpilot.pilot import Pilot

router = APIRouter(tags=["reviews"])


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000, description="Told to the copilot.")


class ReviewList(BaseModel):
    reviews: list[dict[str, Any]]


@router.get("/reviews", summary="Your reviews, newest first")
async def list_reviews(
    user: CurrentUser,
    pilot: PilotDep,
    status: Literal["pending", "approved", "rejected", "used", "expired"] | None = Query(
        default=None
    ),
) -> ReviewList:
    reviews = [r.public() for r in await pilot.reviews.list(user.id)]
    return ReviewList(reviews=[r for r in reviews if status is None or r["status"] == status])


async def _review(pilot: Pilot, user_id: str, review_id: str) -> dict[str, Any]:
    review = await pilot.reviews.get(user_id, review_id[:64])
    if review is None:
        raise NotFoundError(f"Review {review_id[:64]!r} not found")
    return review.public()


@router.get("/reviews/{review_id}", summary="One of your reviews", responses=error_responses(404))
async def get_review(review_id: str, user: CurrentUser, pilot: PilotDep) -> dict[str, Any]:
    return await _review(pilot, user.id, review_id)


async def _decide(
    pilot: Pilot, user_id: str, review_id: str, *, approve: bool, reason: str | None
) -> dict[str, Any]:
    current = await _review(pilot, user_id, review_id)
    if not await pilot.reviews.decide(
        user_id, current["review_id"], approve=approve, by="api", reason=reason
    ):
        raise ConflictError(
            f"Review {current['review_id']} is {current['status']}: only a pending review can "
            "be decided"
        )
    return await _review(pilot, user_id, review_id)


@router.post(
    "/reviews/{review_id}/approve",
    summary="Approve a pending review (its call may then run once)",
    responses=error_responses(404, 409),
)
async def approve(review_id: str, user: CurrentUser, pilot: PilotDep) -> dict[str, Any]:
    return await _decide(pilot, user.id, review_id, approve=True, reason=None)


@router.post(
    "/reviews/{review_id}/reject",
    summary="Reject a pending review",
    responses=error_responses(400, 404, 409, 413, 415, 422),
)
async def reject(
    review_id: str, user: CurrentUser, pilot: PilotDep, body: Rejection | None = None
) -> dict[str, Any]:
    reason = (body.reason.strip() if body else "") or None
    return await _decide(pilot, user.id, review_id, approve=False, reason=reason)
