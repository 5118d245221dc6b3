"""The browser's side of an OAuth connect: the start link and the confirm step.

``GET /oauth/start/<token>`` (what the API's ``/login`` returns) signs the browser in for the
token's user and redirects to the provider. After the provider's redirect back, the callback
shows :func:`confirm_page` to a browser signed in as the flow's user; its form posts to
``POST /oauth/confirm``, which stores the account only for that session's user, and only
if the flow was started by that user. See ``docs/oauth.md``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from blockpilot.errors import NotFoundError, OAuthUserMismatchError, SetupLinkError
from blockpilot.oauth.flow import ConnectedAccount, ParkedConnect
from blockpilot.web.forms import foreign_origin
from blockpilot.web.pages import (
    SECURITY_HEADERS,
    PendingConnect,
    confirm_body,
    connected_body,
    html_page,
    message_page,
    readable_block_name,
)
from blockpilot.web.services import WebServices, services_of
from blockpilot.web.sessions import BrowserSession

router = APIRouter(include_in_schema=False)

CONFIRM_PATH = "/oauth/confirm"
_MAX_FORM_BYTES = 4096
_AGAIN = "Go back to the chat and ask the copilot for a new link."


async def confirm_page(
    services: WebServices, parked: ParkedConnect, session: BrowserSession
) -> Response:
    """The page that asks the flow's user to confirm which account goes to which user."""
    user = await services.pilot.users.find(parked.user_id)
    block = services.pilot.catalog.registry.get(str((parked.context or {}).get("block_id", "")))
    pending = PendingConnect(
        flow_id=parked.flow_id,
        provider_name=parked.provider_name,
        account=parked.username,
        user_name=user.name if user is not None else parked.user_id,
        scopes=parked.scopes,
        block_name=block.name if block is not None else None,
    )
    csrf = services.sessions.confirm_token(session, parked.flow_id)
    return html_page(
        f"Connect {parked.provider_name}?", confirm_body(pending, action=CONFIRM_PATH, csrf=csrf)
    )


async def connected_page(services: WebServices, connected: ConnectedAccount) -> Response:
    """Success: which account is now connected to which blockpilot user."""
    user = await services.pilot.users.find(connected.user_id)
    account = f" ({connected.username})" if connected.username else ""
    lines = [
        f"Your {connected.provider_name} account{account} is "
        f"{'connected again' if connected.reconnected else 'connected'} to blockpilot"
        + (f" for {user.name}." if user is not None else "."),
    ]
    if connected.credential.scopes:
        lines.append("Permissions granted: " + ", ".join(connected.credential.scopes) + ".")
    context: dict[str, Any] = connected.context or {}
    block = services.pilot.catalog.registry.get(str(context.get("block_id", "")))
    if block is not None:
        lines.append(f"The copilot can now run {readable_block_name(block.name)}.")
    title = f"{connected.provider_name} connected"
    return html_page(title, connected_body(title, lines))


@router.get("/oauth/start/{token}", response_class=HTMLResponse)
async def start(token: str, request: Request) -> Response:
    services = services_of(request.app.state)
    try:
        user_id, login_url = services.links.verify_start(token)
    except SetupLinkError as exc:
        if exc.reason == "expired":
            return message_page(
                "This sign-in link has expired",
                "Sign-in links work for 10 minutes only. Nothing was saved.",
                status=410,
                hint=_AGAIN,
            )
        return message_page(
            "This sign-in link is not valid",
            "The link is incomplete or was changed. Nothing was saved.",
            status=400,
            hint=_AGAIN,
        )
    if await services.pilot.users.find(user_id) is None:
        return message_page(
            "This sign-in link cannot be used",
            "The account this link was made for no longer exists. Nothing was saved.",
            status=410,
        )
    redirect = RedirectResponse(login_url, status_code=303, headers=SECURITY_HEADERS)
    services.sessions.sign_in(redirect, user_id)
    return redirect


async def _form(request: Request) -> dict[str, str] | None:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            return None
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return None
    return {name: values[0] for name, values in parsed.items() if values}


@router.post(CONFIRM_PATH, response_class=HTMLResponse)
async def confirm(request: Request) -> Response:
    services = services_of(request.app.state)
    form = await _form(request)
    session = services.sessions.of(request)
    flow_id = (form or {}).get("flow_id", "")
    if (
        form is None
        or session is None
        or foreign_origin(request, services.links.public_url)
        or not services.sessions.confirm_ok(session, flow_id, form.get("csrf"))
    ):
        return message_page(
            "Not connected",
            "This confirmation did not come from this browser's blockpilot page. Nothing was "
            "saved.",
            status=403,
            hint=_AGAIN,
        )
    parked = await services.oauth.peek(flow_id)
    if parked is None:
        return message_page(
            "Not connected",
            "This connect was already confirmed, cancelled, or has expired (they last 10 "
            "minutes). Nothing more was saved.",
            status=410,
            hint=_AGAIN,
        )
    if form.get("decision") != "connect":
        await services.oauth.pending.discard(flow_id)
        return message_page(
            "Not connected",
            f"The {parked.provider_name} account was not connected. Nothing was saved.",
            status=200,
            hint="You can close this page.",
        )
    link = _setup_link(parked.context)
    if link is not None and not await services.link_uses.claim(link[0], parked.user_id, link[1]):
        await services.oauth.pending.discard(flow_id)
        return used_link_page()
    try:
        connected = await services.oauth.complete(flow_id, session.user_id)
    except (OAuthUserMismatchError, NotFoundError) as exc:
        if link is not None:
            await services.link_uses.release(link[0])
        return message_page("Not connected", exc.message, status=403, hint=_AGAIN)
    except BaseException:
        if link is not None:
            await services.link_uses.release(link[0])
        raise
    return await connected_page(services, connected)


def _setup_link(context: dict[str, Any] | None) -> tuple[str, float] | None:
    """The setup link a connect was started from (its hash and expiry), if any."""
    link, expires = (context or {}).get("link"), (context or {}).get("link_expires_at")
    if isinstance(link, str) and isinstance(expires, int | float):
        return link, float(expires)
    return None


def used_link_page() -> HTMLResponse:
    return message_page(
        "This setup link was already used",
        "A setup link stores one credential, and this one already did. Nothing more was saved.",
        status=410,
        hint="If something is still missing, ask the copilot to run the block again: it will "
        "give you a new link.",
    )
