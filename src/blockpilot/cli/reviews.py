"""``blockpilot reviews``: decide the calls a copilot is waiting on (docs/approvals.md)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from blockpilot.cli.common import JsonFlag, UserOption, resolve_user, wants_json
from blockpilot.cli.output import print_json, print_note, stdout_console, table
from blockpilot.cli.runtime import with_pilot
from blockpilot.errors import ConflictError, NotFoundError
from blockpilot.pilot import Pilot

app = typer.Typer(no_args_is_help=True)

ReviewId = Annotated[str, typer.Argument(metavar="REVIEW_ID", show_default=False)]


@app.command("list")
def list_reviews(
    user: UserOption,
    status: Annotated[
        str | None,
        typer.Option("--status", help="pending, approved, rejected, used or expired."),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """A user's reviews, newest first, with the execution each led to."""

    async def body(pilot: Pilot) -> list[dict[str, Any]]:
        found = await resolve_user(pilot, user)
        reviews = [r.public() for r in await pilot.reviews.list(found.id)]
        return [r for r in reviews if status is None or r["status"] == status.strip().lower()]

    reviews = with_pilot(body)
    if wants_json(json_output):
        print_json(reviews)
        return
    if not reviews:
        print_note("No reviews.")
        return
    console = stdout_console()
    console.print(
        table(
            "Reviews",
            ["Created (UTC)", "Block", "Effect", "Status", "Inputs", "Execution", "Id"],
            (
                [
                    r["created_at"][5:19].replace("T", " "),
                    r["block_name"],
                    r["effect"],
                    r["status"],
                    r["input_data"],
                    r["execution_id"],
                    r["review_id"],
                ]
                for r in reviews
            ),
            optional=("Execution",),
            width=console.width,
        )
    )


def _decide(review_id: str, *, approve: bool, reason: str | None) -> dict[str, Any]:
    async def body(pilot: Pilot) -> dict[str, Any]:
        review = await pilot.reviews.find(review_id.strip())
        if review is None:
            raise NotFoundError(f"Review {review_id[:64]!r} not found")
        decided = await pilot.reviews.decide(
            review.user_id, review.id, approve=approve, by="cli", reason=reason
        )
        if not decided:
            raise ConflictError(
                f"Review {review.id} is {review.current_status()}: only a pending review can "
                "be decided"
            )
        updated = await pilot.reviews.get(review.user_id, review.id)
        assert updated is not None
        return updated.public()

    return with_pilot(body)


@app.command("approve")
def approve(review_id: ReviewId) -> None:
    """Approve a pending review: the copilot's next identical call runs, once."""
    print_json(_decide(review_id, approve=True, reason=None))


@app.command("reject")
def reject(
    review_id: ReviewId,
    reason: Annotated[
        str, typer.Option("--reason", help="Why; the copilot is told.", show_default=False)
    ] = "",
) -> None:
    """Reject a pending review; the copilot is told the reason."""
    print_json(_decide(review_id, approve=False, reason=reason.strip()[:2000] or None))
