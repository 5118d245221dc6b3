"""The approval page: a person approves or rejects one review (docs/approvals.md).

``<public_url>/reviews/<token>``: the token (the Pilot's :class:`~blockpilot.links.ReviewLinks`)
names one user's one review; it expires with the review.
The page shows exactly what would run (inputs as JSON, escaped by the template engine) and a
form whose anti-CSRF field is derived from the token. A link works once: a decided, used or
expired review is only shown, never decided again. A browser signed in to blockpilot for
another user (the setup pages' cookie) is refused, so one user cannot act on another's link
by accident.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from blockpilot.errors import TokenError
from blockpilot.links import ReviewLinks
from blockpilot.pilot import Pilot
from blockpilot.storage.reviews import PENDING, Review
from blockpilot.web.forms import foreign_origin, read_form
from blockpilot.web.pages import CSS, SECURITY_HEADERS

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("blockpilot.web", "templates"),
        autoescape=True,  # every value is text; nothing a user or model wrote becomes markup
        undefined=jinja2.StrictUndefined,
    )


def _page(status: int, title: str, **values: Any) -> HTMLResponse:
    values.setdefault("message", None)
    values.setdefault("success", False)
    values.setdefault("review", None)
    html = _templates().get_template("review.html").render(title=title, css=CSS, **values)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


_STALE = {
    "approved": "This request was already approved.",
    "rejected": "This request was already rejected.",
    "used": "This request was approved and has run.",
    "expired": "This request expired before anyone decided it.",
}


async def _load(request: Request, token: str) -> tuple[Pilot, ReviewLinks, Review] | HTMLResponse:
    pilot: Pilot | None = getattr(request.app.state, "pilot", None)
    if pilot is None:
        return _page(503, "Not available", message="The service is starting; try again.")
    links = pilot.review_links
    try:
        user_id, review_id = links.open(token)
    except TokenError as exc:
        message = (
            "This link has expired."
            if exc.reason == "expired"
            else "This link is not valid. Ask the copilot for a new one."
        )
        return _page(404 if exc.reason == "invalid" else 410, "Link not valid", message=message)
    web = getattr(request.app.state, "web", None)
    signed_in = web.sessions.of(request) if web is not None and hasattr(web, "sessions") else None
    if signed_in is not None and signed_in.user_id != user_id:
        return _page(
            403,
            "Signed in as someone else",
            message="This browser is signed in to blockpilot for another user; this request "
            "belongs to someone else and cannot be decided here.",
        )
    review = await pilot.reviews.get(user_id, review_id)
    if review is None:
        return _page(404, "Link not valid", message="This request no longer exists.")
    return pilot, links, review


async def _render(
    pilot: Pilot, links: ReviewLinks, review: Review, token: str, **extra: Any
) -> HTMLResponse:
    status = review.current_status()
    user = await pilot.users.find(review.user_id)
    credentials = []
    for credential_id in review.credential_ids:
        meta = await pilot.credential_store.get_meta(review.user_id, credential_id)
        if meta is not None:
            credentials.append(f"{meta.title or meta.provider} ({meta.provider}, {meta.type})")
    message = extra.pop("message", None) or (None if status == PENDING else _STALE.get(status))
    return _page(
        extra.pop("status_code", 200),
        "Approve a copilot action",
        review=review,
        user_name=user.name if user is not None else review.user_id,
        inputs_json=json.dumps(review.input_data, indent=2, ensure_ascii=False, sort_keys=True),
        credentials=", ".join(credentials),
        pending=status == PENDING,
        csrf=links.signer.tag(token),
        message=message,
        **extra,
    )


@router.get("/reviews/{token}", response_class=HTMLResponse)
async def review_page(request: Request, token: str) -> HTMLResponse:
    loaded = await _load(request, token)
    if isinstance(loaded, HTMLResponse):
        return loaded
    pilot, links, review = loaded
    return await _render(pilot, links, review, token)


@router.post("/reviews/{token}", response_class=HTMLResponse)
async def decide(request: Request, token: str) -> HTMLResponse:
    loaded = await _load(request, token)
    if isinstance(loaded, HTMLResponse):
        return loaded
    pilot, links, review = loaded
    if foreign_origin(request, links.public_url):
        return _page(403, "Not accepted", message="The form came from another site.")
    form = await read_form(request)
    if isinstance(form, HTMLResponse):
        return form
    if not links.signer.tag_ok(token, next(iter(form.get("csrf") or []), None)):
        return _page(403, "Not accepted", message="The form is out of date; reload the page.")
    decision = (form.get("decision") or [""])[0]
    if decision not in ("approve", "reject"):
        return _page(400, "Not accepted", message="Choose Approve or Reject.")
    reason = ((form.get("reason") or [""])[0].strip()[:2000]) or None
    approve = decision == "approve"
    decided = await pilot.reviews.decide(
        review.user_id, review.id, approve=approve, by="approval page", reason=reason
    )
    fresh = await pilot.reviews.get(review.user_id, review.id) or review
    if not decided:
        return await _render(pilot, links, fresh, token, status_code=409)
    message = (
        "Approved. The copilot can now run it, once."
        if approve
        else "Rejected. The copilot will be told" + (" why." if reason else ".")
    )
    return await _render(pilot, links, fresh, token, message=message, success=True)
