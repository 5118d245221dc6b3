"""The setup page: ``/setup/<token>`` shows what is missing and stores what the person enters.

The browser has no API key: the signed token in the path (see :mod:`blockpilot.links`)
names the user and the one requirement, and is all the authority these routes accept. A POST
needs the token *and* the form's anti-CSRF field (derived from the token), and stores only
the requirement's provider, only a type the requirement accepts, and only for the token's
user. No secret is ever written back into a page.

Opening the page signs the browser in for the link's user (:mod:`blockpilot.web.sessions`),
which is what lets an OAuth connect started here be confirmed in this browser; and a link
stores one credential only (:mod:`blockpilot.web.link_uses`). See ``docs/oauth.md``.
"""

from __future__ import annotations

import math
from itertools import zip_longest
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from blockpilot.credentials.matching import provider_display_name
from blockpilot.credentials.servers import SERVER_BOUND_PROVIDERS
from blockpilot.errors import InvalidInputError, SetupLinkError
from blockpilot.limits import app_limiter
from blockpilot.links import SetupGrant
from blockpilot.storage.users import User
from blockpilot.web.connect import used_link_page
from blockpilot.web.forms import foreign_origin, read_form
from blockpilot.web.link_uses import hash_link
from blockpilot.web.pages import (
    SECURITY_HEADERS,
    TYPE_NAMES,
    FormState,
    Requirement,
    connected_body,
    html_page,
    message_page,
    readable_block_name,
    setup_page,
)
from blockpilot.web.services import WebServices, services_of

router = APIRouter(include_in_schema=False)

FORM_KINDS = ("api_key", "user_password", "host_scoped")
_AGAIN = (
    "Go back to the chat and ask the copilot to run the block again: it will give you a new link."
)


def _link_problem(reason: str) -> HTMLResponse:
    if reason == "expired":
        return message_page(
            "This setup link has expired",
            "Setup links work for a short time only, and this one is too old.",
            status=410,
            hint=_AGAIN,
        )
    return message_page(
        "This setup link is not valid",
        "The link is incomplete or was changed. Nothing was saved.",
        status=400,
        hint="Copy the whole link from the chat, or " + _AGAIN[0].lower() + _AGAIN[1:],
    )


async def _open(
    request: Request, token: str
) -> tuple[WebServices, SetupGrant, User] | HTMLResponse:
    services = services_of(request.app.state)
    try:
        grant = services.links.verify(token)
    except SetupLinkError as exc:
        return _link_problem(exc.reason)
    user = await services.pilot.users.find(grant.user_id)
    if user is None or user.id != grant.user_id:
        return message_page(
            "This setup link cannot be used",
            "The account this link was made for no longer exists. Nothing was saved.",
            status=410,
        )
    if await services.link_uses.used(hash_link(token)):
        return used_link_page()
    return services, grant, user


def _requirement(services: WebServices, grant: SetupGrant, user: User) -> Requirement:
    block = services.pilot.catalog.registry.get(grant.block_id)
    described = block.Input.model_fields.get(grant.field_id) if block is not None else None
    return Requirement(
        block_name=block.name if block is not None else grant.block_id,
        block_description=block.description if block is not None else "",
        user_name=user.name,
        field_title=grant.field_id.replace("_", " ").title(),
        field_description=(described.description or "") if described is not None else "",
        provider=grant.provider,
        provider_name=provider_display_name(grant.provider),
        types=grant.types,
        scopes=grant.scopes,
        host=grant.host,
    )


def _render(
    request: Request,
    services: WebServices,
    grant: SetupGrant,
    user: User,
    token: str,
    state: FormState | None = None,
    status: int = 200,
) -> HTMLResponse:
    req = _requirement(services, grant, user)
    connect = f"/setup/{token}/connect" if services.oauth.is_configured(grant.provider) else None
    body = setup_page(
        req,
        form_action=f"/setup/{token}",
        connect_action=connect,
        csrf=services.links.csrf_token(token),
        state=state,
    )
    return html_page(f"Connect {req.provider_name}", body, status)


async def _checked_form(
    request: Request, token: str
) -> tuple[WebServices, SetupGrant, User, dict[str, list[str]]] | HTMLResponse:
    opened = await _open(request, token)
    if isinstance(opened, HTMLResponse):
        return opened
    services, grant, user = opened
    # The same per-user budget as the API: a link cannot be used to flood the stores.
    decision = await app_limiter(request.app).acquire(grant.user_id)
    if not decision.allowed:
        wait = max(1, math.ceil(decision.retry_after))
        page = message_page(
            "Too many attempts",
            f"Too many requests for this account; wait {wait} seconds and try again.",
            status=429,
        )
        page.headers["Retry-After"] = str(wait)
        return page
    form = await read_form(request)
    if isinstance(form, HTMLResponse):
        return form
    if foreign_origin(request, services.links.public_url) or not services.links.csrf_ok(
        token, _first(form, "csrf")
    ):
        return message_page(
            "Form not accepted",
            "The form did not come from this page. Nothing was saved.",
            status=403,
            hint="Reload the setup page and try again.",
        )
    return services, grant, user, form


def _first(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    return values[0] if values else ""


@router.get("/setup/{token}", response_class=HTMLResponse)
async def show_setup_page(token: str, request: Request) -> Response:
    opened = await _open(request, token)
    if isinstance(opened, HTMLResponse):
        return opened
    services, grant, user = opened
    page = _render(request, services, grant, user, token)
    services.sessions.sign_in(page, grant.user_id)
    return page


@router.post("/setup/{token}", response_class=HTMLResponse)
async def save_credential(token: str, request: Request) -> Response:
    checked = await _checked_form(request, token)
    if isinstance(checked, HTMLResponse):
        return checked
    services, grant, user, form = checked
    kind = _first(form, "kind")
    if kind not in FORM_KINDS or kind not in grant.types:
        return message_page(
            "Form not accepted",
            "This kind of credential is not what the block needs. Nothing was saved.",
            status=400,
            hint="Reload the setup page and use one of its forms.",
        )
    state = FormState(kind=kind, title=_first(form, "title").strip()[:200])
    link = hash_link(token)
    if not await services.link_uses.claim(link, grant.user_id, grant.expires_at):
        return used_link_page()
    try:
        data = _credential_data(grant, kind, form, state)
        meta = await services.pilot.add_credentials(grant.user_id, data)
    except InvalidInputError as exc:
        await services.link_uses.release(link)  # a mistake in the form does not use the link
        state.error = _friendly(exc.message)
        return _render(request, services, grant, user, token, state, status=422)
    except BaseException:
        await services.link_uses.release(link)
        raise
    provider_name = provider_display_name(grant.provider)
    block = services.pilot.catalog.registry.get(grant.block_id)
    lines = [
        f"Saved {TYPE_NAMES.get(kind, kind).lower()} “{meta.title or provider_name}” for "
        f"{provider_name} to the account of {user.name}.",
    ]
    if block is not None:
        lines.append(f"The copilot can now run {readable_block_name(block.name)}.")
    return html_page(
        f"{provider_name} connected", connected_body(f"{provider_name} connected", lines)
    )


@router.post("/setup/{token}/connect", response_class=HTMLResponse)
async def connect_account(token: str, request: Request) -> Response:
    checked = await _checked_form(request, token)
    if isinstance(checked, HTMLResponse):
        return checked
    services, grant, _user, _form = checked
    provider_name = provider_display_name(grant.provider)
    if "oauth2" not in grant.types or not services.oauth.is_configured(grant.provider):
        return message_page(
            f"{provider_name} sign-in is not available",
            f"This service cannot connect {provider_name} accounts by sign-in. Nothing was saved.",
            status=404,
            hint="Use another form on the setup page, or ask the operator of this service.",
        )
    start = await services.oauth.start(
        grant.user_id,
        grant.provider,
        grant.scopes,
        context={
            "block_id": grant.block_id,
            "field": grant.field_id,
            "via": "setup_page",
            # The link is used up when the connect is confirmed, not before.
            "link": hash_link(token),
            "link_expires_at": grant.expires_at,
        },
    )
    redirect = RedirectResponse(start.login_url, status_code=303, headers=SECURITY_HEADERS)
    services.sessions.sign_in(redirect, grant.user_id)
    return redirect


def _credential_data(
    grant: SetupGrant, kind: str, form: dict[str, list[str]], state: FormState
) -> dict[str, Any]:
    """The credential as ``Pilot.add_credentials`` takes it; provider and type are the grant's."""
    data: dict[str, Any] = {"provider": grant.provider, "type": kind}
    if state.title:
        data["title"] = state.title
    if kind == "api_key":
        return data | _api_key_fields(form)
    if kind == "user_password":
        return data | _password_fields(grant, form, state)
    return data | _header_fields(form, state)


def _api_key_fields(form: dict[str, list[str]]) -> dict[str, Any]:
    key = _first(form, "api_key").strip()
    if not key:
        raise InvalidInputError("Enter the API key.")
    return {"api_key": key}


def _password_fields(
    grant: SetupGrant, form: dict[str, list[str]], state: FormState
) -> dict[str, Any]:
    username, password = _first(form, "username").strip(), _first(form, "password")
    state.username_given = bool(username)
    if not username or not password:
        raise InvalidInputError("Enter both the username and the password.")
    fields = {"username": username, "password": password}
    if grant.provider in SERVER_BOUND_PROVIDERS:  # sent to that server only
        host = _first(form, "host").strip() or (grant.host or "")
        if not host:
            raise InvalidInputError("Enter the server the username and password are for.")
        fields["host"] = host
    return fields


def _header_fields(form: dict[str, list[str]], state: FormState) -> dict[str, Any]:
    host = _first(form, "host").strip()
    state.host = host[:300]
    names = [n.strip() for n in form.get("header_name", [])]
    values = [v.strip() for v in form.get("header_value", [])]
    state.header_names = [n[:100] for n in names]
    headers: dict[str, str] = {}
    for position, (name, value) in enumerate(zip_longest(names, values, fillvalue=""), 1):
        if not name and not value:
            continue
        if not name or not value:
            raise InvalidInputError(f"Header {position} needs both a name and a value.")
        if name.lower() in {h.lower() for h in headers}:
            raise InvalidInputError(f"Header {position} repeats the name {name[:100]!r}.")
        headers[name] = value
    if not host:
        raise InvalidInputError("Enter the host the headers are for.")
    if not headers:
        raise InvalidInputError("Add at least one header with its value.")
    return {"host": host, "headers": headers}


def _friendly(message: str) -> str:
    # parse_credentials appends a list of every type's fields, which is noise on this page.
    text = message.split(". Types:", 1)[0]
    return text if text.endswith(".") else text + "."
