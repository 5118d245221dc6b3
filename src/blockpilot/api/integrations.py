"""OAuth2 connect: ``GET /integrations/{provider}/login`` and the provider's redirect back.

``/login`` is an API call (Bearer key) that returns the authorization URL to show the person;
``/callback`` is where the person's browser comes back from the provider, without an API
key: the single-use state it carries says whose login it is. The callback answers with an
HTML page, since a person reads it. :func:`attach` also gives every ``setup_requirements``
response of the app's Pilot its ``setup_url`` links.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.responses import HTMLResponse

from blockpilot.api.deps import CurrentUser
from blockpilot.api.errors import http_error_for
from blockpilot.api.limits import rate_limit
from blockpilot.api.routes import API_PREFIX, error_responses
from blockpilot.credentials.matching import provider_display_name
from blockpilot.oauth.flow import OAuthCallbackError, parse_scopes
from blockpilot.pilot import Pilot
from blockpilot.web.pages import connected_body, html_page, message_page, readable_block_name
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

    login_url: str = Field(description="The provider's authorization URL; open it in a browser.")
    state_expires_at: datetime = Field(description="The login must finish before this time.")
    provider: str
    scopes: list[str] = Field(description="The scopes requested (provider defaults included).")


@router.get(
    "/integrations/{provider}/login",
    summary="Start connecting an account (OAuth2 authorization code + PKCE)",
    description=(
        "Returns the provider's authorization URL with a single-use state (valid 10 minutes) "
        "bound to you, the provider and a PKCE S256 challenge. After the person approves, the "
        "provider redirects to `/integrations/{provider}/callback`, which stores the tokens "
        "encrypted as your `oauth2` credential. 404 if no OAuth app is configured for the provider."
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
        login_url=start.login_url,
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
    try:
        connected = await services.oauth.finish(provider, code=code, state=state, error=error)
    except OAuthCallbackError as exc:
        name = provider_display_name(provider) if len(provider) <= 64 else "the provider"
        status = http_error_for(type(exc)).status
        return message_page(f"Could not connect {name}", exc.message, status=status)
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


__all__ = ["CALLBACK_PATH", "LoginResponse", "attach", "callback_url", "router"]
