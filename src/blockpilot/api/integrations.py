"""OAuth2 connect: ``GET /integrations/{provider}/login``, the provider's redirect back, and
the user verification that stores the account (see ``docs/oauth.md``).

``/login`` is an API call (Bearer key) that returns a start link to show the person: opening
it signs that browser in for the user and goes on to the provider. ``/callback`` is where
the browser comes back, without an API key: the single-use state says whose login it is,
but not whose browser this is, so the account is *parked*, not stored. It is stored only
when the flow's own user verifies it: by default the browser session of that user confirms
it on the page the callback shows; with ``BLOCKPILOT_USER_VERIFIER_URL`` the browser goes to
the host application, which confirms it for its signed-in user with ``POST /oauth/verify``.
:func:`attach` also gives every ``setup_requirements`` response its ``setup_url`` links.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.responses import HTMLResponse, RedirectResponse

from blockpilot.api.body import json_body, read_json_object
from blockpilot.api.deps import CurrentUser
from blockpilot.api.errors import http_error_for
from blockpilot.api.limits import rate_limit
from blockpilot.api.routes import API_PREFIX, error_responses
from blockpilot.credentials.matching import provider_display_name
from blockpilot.errors import (
    InvalidInputError,
    OAuthCallbackError,
    OAuthFlowNotFoundError,
    OAuthUserMismatchError,
)
from blockpilot.oauth.flow import parse_scopes
from blockpilot.pilot import Pilot
from blockpilot.web.connect import confirm_page
from blockpilot.web.pages import SECURITY_HEADERS, message_page
from blockpilot.web.services import WebServices, build_services, services_of

router = APIRouter(tags=["integrations"])

CALLBACK_PATH = f"{API_PREFIX}/integrations/{{provider}}/callback"
_HTML = {"text/html": {"schema": {"type": "string"}}}
_ERROR_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
_JSON_ERRORS = {
    status: {"description": answer["description"]}
    for status, answer in error_responses(404, 422).items()
}


def callback_url(public_url: str, provider: str) -> str:
    return public_url.rstrip("/") + CALLBACK_PATH.format(provider=provider)


def attach(app: FastAPI, pilot: Pilot) -> WebServices:
    """Build the setup-link signer and the OAuth flow for *pilot*; run at app start-up."""
    services = build_services(pilot, callback_url)
    app.state.web = services
    return services


class LoginResponse(BaseModel):
    """Where to send the person to connect the account."""

    login_url: str = Field(
        description="A start link to open in the person's browser: it signs that browser in "
        "for you (a short-lived cookie) and goes on to the provider's authorization page. "
        "The connect is stored only when that browser (or your user verifier) confirms it."
    )
    state_expires_at: datetime = Field(description="The login must finish before this time.")
    provider: str
    scopes: list[str] = Field(description="The scopes requested (provider defaults included).")


@router.get(
    "/integrations/{provider}/login",
    summary="Start connecting an account (OAuth2 authorization code + PKCE)",
    description=(
        "Returns a start link (valid 10 minutes) that signs the person's browser in for you "
        "and redirects to the provider's authorization URL, with a single-use state bound to "
        "you, the provider and a PKCE S256 challenge. The provider redirects back to "
        "`/integrations/{provider}/callback`, which parks the tokens until you verify the "
        "connect: in the same browser (a confirm page), or, with `BLOCKPILOT_USER_VERIFIER_URL`, "
        "through `POST /oauth/verify`. 404 if no OAuth app is configured for the provider."
    ),
    responses=error_responses(401, 404, 422, 429),
    dependencies=[Depends(rate_limit)],
)
async def login(
    provider: str,
    request: Request,
    response: Response,
    user: CurrentUser,
    scopes: Annotated[
        str | None,
        Query(description="Comma-separated scopes to request, e.g. `repo,read:user`."),
    ] = None,
) -> LoginResponse:
    services = services_of(request.app.state)
    services.oauth.provider(provider)  # 404 before anything else for an unconfigured provider
    start = await services.oauth.start(user.id, provider, parse_scopes(scopes))
    response.headers["Cache-Control"] = "no-store"
    return LoginResponse(
        login_url=services.links.start_url(
            user.id, start.login_url, start.state_expires_at.timestamp()
        ),
        state_expires_at=start.state_expires_at,
        provider=start.provider,
        scopes=start.scopes,
    )


@router.get(
    "/integrations/{provider}/callback",
    summary="The provider's redirect back (opened by the browser; no API key)",
    response_class=HTMLResponse,
    responses={
        200: {"description": "The account is connected (HTML page)", "content": _HTML},
        400: {
            "description": "Not connected: bad, expired or used state, provider error, "
            "failed token exchange (HTML page)",
            "content": _HTML,
        },
        # JSON like every API error (error_responses would document them as HTML here).
        **{status: {**answer, "content": _ERROR_JSON} for status, answer in _JSON_ERRORS.items()},
    },
)
async def callback(
    provider: str,
    request: Request,
    code: Annotated[str | None, Query(description="The authorization code.")] = None,
    state: Annotated[str | None, Query(description="The state from the login URL.")] = None,
    error: Annotated[str | None, Query(description="The provider's error code, if any.")] = None,
    error_description: Annotated[
        str | None, Query(description="Ignored: never shown, since anyone can put text here.")
    ] = None,
) -> Response:
    services = services_of(request.app.state)
    session = services.sessions.of(request)
    verifier = services.user_verifier_url

    def verifiable(user_id: str) -> bool:
        # The host application verifies its own users; otherwise only this browser can.
        return verifier is not None or (session is not None and session.user_id == user_id)

    try:
        parked = await services.oauth.finish(
            provider, code=code, state=state, error=error, park_if=verifiable
        )
    except OAuthCallbackError as exc:
        name = provider_display_name(provider) if len(provider) <= 64 else "the provider"
        status = http_error_for(type(exc)).status
        return message_page(f"Could not connect {name}", exc.message, status=status)
    if verifier is not None:
        separator = "&" if "?" in verifier else "?"
        target = (
            verifier
            + separator
            + urlencode({"flow_id": parked.flow_id, "provider": parked.provider})
        )
        return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    assert session is not None  # verifiable() said so
    return await confirm_page(services, parked, session)


VERIFY_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "flow_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 128,
            "description": "The `flow_id` your verifier page received.",
        },
        "user_id": {
            "type": "string",
            "maxLength": 36,
            "description": "Optional: the blockpilot user your application has signed in; "
            "it must be the API key's user.",
        },
    },
    "required": ["flow_id"],
    "additionalProperties": False,
}


class PendingConnectInfo(BaseModel):
    """A connect that waits for verification: who would be connected to what (no secrets)."""

    flow_id: str
    user_id: str
    provider: str
    account: str | None = Field(description="The provider account's name, when it tells one.")
    scopes: list[str]
    expires_at: datetime


class VerifiedConnect(BaseModel):
    """The connect is stored as the user's `oauth2` credential."""

    user_id: str
    provider: str
    account: str | None = Field(description="The provider account's name, when it tells one.")
    credential_id: str
    title: str
    scopes: list[str]
    reconnected: bool


@router.get(
    "/oauth/flows/{flow_id}",
    summary="Look at a pending connect before verifying it",
    description=(
        "For a user verifier page: which provider account waits to be connected to you. "
        "404 unless the flow is pending and was started by the API key's user."
    ),
    responses=error_responses(401, 404, 422, 429),
    dependencies=[Depends(rate_limit)],
)
async def pending_connect(flow_id: str, request: Request, user: CurrentUser) -> PendingConnectInfo:
    services = services_of(request.app.state)
    parked = await services.oauth.peek(flow_id)
    if parked is None or parked.user_id != user.id:
        raise OAuthFlowNotFoundError(
            "No pending connect of yours with this flow id (verified, expired or unknown).",
            details={"reason": "flow_unknown"},
        )
    return PendingConnectInfo(
        flow_id=flow_id,
        user_id=parked.user_id,
        provider=parked.provider,
        account=parked.username,
        scopes=parked.scopes,
        expires_at=datetime.fromtimestamp(parked.expires_at, UTC),
    )


@router.post(
    "/oauth/verify",
    summary="Verify a pending connect for the signed-in user (user verifier)",
    description=(
        "With `BLOCKPILOT_USER_VERIFIER_URL`, the callback sends the browser to your page "
        "with `?flow_id=…`; your page checks who is signed in to your application and calls "
        "this with that user's API key. Only the user who started the login can verify it: "
        "another user's key gets 403 `oauth_user_mismatch` and the flow is discarded. A flow "
        "verifies once and expires after 10 minutes (404 `oauth_flow_not_found`)."
    ),
    responses=error_responses(400, 401, 403, 404, 413, 415, 422, 429),
    dependencies=[Depends(rate_limit)],
    openapi_extra=json_body(VERIFY_BODY_SCHEMA, description='{"flow_id": "…"}'),
)
async def verify(request: Request, user: CurrentUser) -> VerifiedConnect:
    services = services_of(request.app.state)
    data = await read_json_object(request)
    flow_id, user_id = data.get("flow_id"), data.get("user_id")
    if (
        not set(data) <= {"flow_id", "user_id"}
        or not isinstance(flow_id, str)
        or not 0 < len(flow_id) <= 128
        or (user_id is not None and not isinstance(user_id, str))
    ):
        raise InvalidInputError('The body must be {"flow_id": "...", "user_id": "..." (optional)}')
    if user_id is not None and user_id != user.id:
        await services.oauth.pending.discard(flow_id)
        raise OAuthUserMismatchError(
            "user_id is not the API key's user; the connect was discarded and nothing was saved.",
            details={"reason": "user_mismatch"},
        )
    connected = await services.oauth.complete(flow_id, user.id)
    return VerifiedConnect(
        user_id=connected.user_id,
        provider=connected.provider,
        account=connected.username,
        credential_id=connected.credential.id,
        title=connected.credential.title or connected.provider_name,
        scopes=list(connected.credential.scopes or ()),
        reconnected=connected.reconnected,
    )


__all__ = [
    "CALLBACK_PATH",
    "LoginResponse",
    "attach",
    "callback_url",
    "router",
]
