"""What every page with a form shares: the same-site check and one bounded form reader."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse

from blockpilot.web.pages import message_page

MAX_FORM_BYTES = 64 * 1024


def foreign_origin(request: Request, public_url: str) -> bool:
    """A browser said the form came from another site (``null`` is what no-referrer sends)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return False
    public = urlsplit(public_url)
    return origin.rstrip("/").lower() != f"{public.scheme}://{public.netloc}".lower()


async def read_form(request: Request) -> dict[str, list[str]] | HTMLResponse:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return message_page(
            "Form not accepted", "The form was sent in an unexpected format.", status=415
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        return message_page(
            "Form too large", "The form is larger than this page accepts.", status=413
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return message_page(
                "Form too large", "The form is larger than this page accepts.", status=413
            )
    try:
        return parse_qs(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=40
        )
    except (UnicodeDecodeError, ValueError):
        return message_page("Form not accepted", "The form could not be read.", status=400)
