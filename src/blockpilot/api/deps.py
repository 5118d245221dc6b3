"""Request dependencies: the Pilot of this app and the signed-in user."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from blockpilot.errors import AuthenticationRequiredError
from blockpilot.pilot import Pilot
from blockpilot.storage.users import User

_MAX_KEY_CHARS = 256

# Declares the scheme in OpenAPI; the header is checked below, with messages that say what is wrong.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `blockpilot users create` or `blockpilot keys create`.",
)


def get_pilot(request: Request) -> Pilot:
    pilot: Pilot = request.app.state.pilot
    return pilot


async def _pilot_dependency(request: Request) -> Pilot:
    # async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a thread
    # hand-off (and GIL wait) on every request.
    return get_pilot(request)


PilotDep = Annotated[Pilot, Depends(_pilot_dependency)]


def _api_key(header: str | None) -> str:
    if not header or not header.strip():
        raise AuthenticationRequiredError(
            "Missing API key; send the header 'Authorization: Bearer <api key>'"
        )
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if (
        scheme.lower() != "bearer"
        or not key
        or len(key) > _MAX_KEY_CHARS
        or len(key.split()) != 1  # whitespace inside (str.split splits where isspace() is true)
    ):
        raise AuthenticationRequiredError(
            "Malformed Authorization header; use 'Authorization: Bearer <api key>'"
        )
    return key


async def authenticate(request: Request) -> User:
    """The owner of the request's API key; 401 for a missing, malformed, unknown or revoked key.

    An active key is trusted for 0.5 s between database checks (``UserStore``): a key
    revoked through this process stops at once, one revoked elsewhere within 0.5 s.
    """
    return await sign_in(
        get_pilot(request),
        request.headers.get("authorization"),
        request.scope.setdefault("state", {}),
    )


async def sign_in(pilot: Pilot, authorization: str | None, state: dict[str, Any]) -> User:
    """:func:`authenticate` from an ``Authorization`` header's value and the request's
    ``scope["state"]`` (what ``request.state`` reads), for routes that take no Request."""
    key = _api_key(authorization)
    owner = await pilot.users.owner_of_api_key(key)
    if owner is None:
        raise AuthenticationRequiredError("Unknown or revoked API key")
    state["user_id"] = owner.user.id  # for the access log
    state["api_key_id"] = owner.api_key_id  # policy rules may narrow this key
    return owner.user


def request_api_key_id(request: Request) -> str | None:
    """The id of the API key :func:`authenticate` accepted for *request*."""
    key_id: str | None = getattr(request.state, "api_key_id", None)
    return key_id


async def current_user(
    request: Request,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> User:
    """:func:`authenticate` as a dependency (which also declares the bearer scheme in OpenAPI)."""
    return await authenticate(request)


CurrentUser = Annotated[User, Depends(current_user)]
