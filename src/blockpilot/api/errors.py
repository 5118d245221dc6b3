"""The HTTP error table: every blockpilot error class to a status, and one JSON body shape.

Every error the API returns has the body ``{"error": {"code", "message", "details"}}``:
blockpilot errors (through :data:`ERROR_TABLE`), FastAPI's request validation errors,
Starlette's routing errors (404, 405) and, as the last resort, unexpected exceptions.

A table row is looked up along the exception's MRO, so the most specific class wins; a
test checks that every class of the tree has its own row. Rows with a ``public_message``
hide the error's own text (it may name files, keys or hosts of the operator): the caller
gets the public message and the request id, the server log gets the real message.

A few errors are raised only at this door, for HTTP problems that have no in-process
counterpart (a body that is not JSON, a body too large, a tool name in the URL); like every
error they live in :mod:`blockpilot.errors` and are re-exported here:
``MalformedBodyError`` (400), ``UnsupportedMediaTypeError`` (415), ``ToolNotFoundError``
(404), ``RequestTooLargeError`` (413).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from blockpilot import errors as bp
from blockpilot.errors import (  # re-exported: other modules import them from here
    MalformedBodyError,
    RequestTooLargeError,
    ToolNotFoundError,
    UnsupportedMediaTypeError,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HttpError:
    """How one error class is answered: a status and, for server faults, a public message."""

    status: int
    public_message: str | None = None


_MISCONFIGURED = "Service misconfigured; see the server log (request id {request_id})"
_INTERNAL = "Internal error; see the server log (request id {request_id})"

ERROR_TABLE: dict[type[bp.BlockpilotError], HttpError] = {
    bp.BlockpilotError: HttpError(500, _INTERNAL),
    bp.ConfigurationError: HttpError(500, _MISCONFIGURED),
    bp.EncryptionKeyError: HttpError(500, _MISCONFIGURED),
    bp.StorageUnusableError: HttpError(500, _MISCONFIGURED),
    bp.InvalidInputError: HttpError(422),
    MalformedBodyError: HttpError(400),
    UnsupportedMediaTypeError: HttpError(415),
    bp.AuthenticationRequiredError: HttpError(401),
    bp.NotFoundError: HttpError(404),
    bp.BlockNotFoundError: HttpError(404),
    bp.UserNotFoundError: HttpError(404),
    bp.CredentialNotFoundError: HttpError(404),
    bp.SessionNotFoundError: HttpError(404),
    bp.ExecutionNotFoundError: HttpError(404),
    bp.WorkspaceFileNotFoundError: HttpError(404),
    ToolNotFoundError: HttpError(404),
    bp.ConflictError: HttpError(409),
    bp.RateLimitedError: HttpError(429),
    bp.TooManySessionsError: HttpError(429),
    bp.OriginNotAllowedError: HttpError(403),
    bp.AdminRequiredError: HttpError(403),
    bp.PolicyLockedError: HttpError(403),
    # The OAuth callback answers the person's browser with an HTML page, at this status.
    bp.OAuthCallbackError: HttpError(400),
    # A pending OAuth connect verified by another user than the one who started it.
    bp.OAuthUserMismatchError: HttpError(403),
    bp.ProviderNotConfiguredError: HttpError(404),
    bp.OAuthFlowNotFoundError: HttpError(404),
    # Links and states are the web pages' own (they answer with a page); should one reach
    # this door, it is the caller's bad token.
    bp.TokenError: HttpError(400),
    bp.SetupLinkError: HttpError(400),
    bp.OAuthStateError: HttpError(400),
    bp.StrictJSONError: HttpError(400),
    bp.LeaseLostError: HttpError(409),
    # The lock service (Redis) is down; callers normally decide what that means for them.
    bp.LockUnavailableError: HttpError(503),
    bp.BlockLoadError: HttpError(500, _INTERNAL),
    # Block errors normally travel inside a 200 tool response; should one reach this door,
    # it is the block's (upstream's) failure, not the caller's, except for bad input.
    bp.BlockError: HttpError(502),
    bp.BlockInputError: HttpError(422),
    bp.BlockOutputError: HttpError(502),
    bp.BlockExecutionError: HttpError(502),
    bp.UpstreamAPIError: HttpError(502),
    bp.UpstreamRateLimitedError: HttpError(502),
    bp.BlockTimeoutError: HttpError(504),
    bp.CredentialsError: HttpError(409),
    bp.CredentialsUnavailableError: HttpError(409),
    bp.DecryptionError: HttpError(500, _MISCONFIGURED),
    bp.OAuthRefreshError: HttpError(502),
    bp.ReauthorizationRequiredError: HttpError(409),
    # An upstream wants a scope the user's token lacks: reconnect with it (409, like above).
    bp.InsufficientScopeError: HttpError(409),
    # A token endpoint's answers (connecting or refreshing an account): an upstream's failure.
    bp.TokenEndpointError: HttpError(502),
    bp.TokenGrantRefusedError: HttpError(409),
    bp.TokenClientRefusedError: HttpError(502),
    bp.TokenRequestRefusedError: HttpError(502),
    bp.TokenEndpointUnavailableError: HttpError(502),
    bp.TokenResponseInvalidError: HttpError(502),
    bp.WorkspaceError: HttpError(400),
    bp.WorkspacePathError: HttpError(400),
    bp.WorkspaceQuotaError: HttpError(413),
    bp.QuotaExceededError: HttpError(413),
    bp.NetworkError: HttpError(502),
    bp.ChatProviderError: HttpError(502),
    bp.SchemaConversionError: HttpError(422),
    bp.SpecError: HttpError(422),
    bp.OAuthDiscoveryError: HttpError(422),
    bp.DestinationBlockedError: HttpError(400),
    bp.ResponseTooLargeError: HttpError(502),
    bp.UpstreamTimeoutError: HttpError(504),
    RequestTooLargeError: HttpError(413),
}

# Codes for Starlette's own HTTP errors (unknown route, wrong method, ...).
_HTTP_CODES = {
    400: "bad_request",
    401: "auth_required",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def http_error_for(exc_type: type[bp.BlockpilotError]) -> HttpError:
    """The table row of *exc_type*: its own, else its nearest ancestor's."""
    for cls in exc_type.__mro__:
        row = ERROR_TABLE.get(cls)
        if row is not None:
            return row
    return ERROR_TABLE[bp.BlockpilotError]


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "-"))


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The one error body shape; a 401 always says which scheme to use."""
    all_headers = dict(headers or {})
    if status == 401:
        all_headers.setdefault("WWW-Authenticate", "Bearer")
    body = {"error": {"code": code, "message": message, "details": details or None}}
    return JSONResponse(body, status_code=status, headers=all_headers)


def render_error(exc: bp.BlockpilotError, request_id: str) -> JSONResponse:
    """The response for a blockpilot error, following :data:`ERROR_TABLE`."""
    row = http_error_for(type(exc))
    if row.public_message is not None:
        logger.error(
            "request failed: %s: %s",
            type(exc).__name__,
            exc.message,
            extra={"request_id": request_id},
        )
        return error_response(
            row.status, exc.code, row.public_message.format(request_id=request_id)
        )
    if row.status >= 500:  # an upstream's failure: worth a line, not a traceback
        logger.warning("request failed upstream: %s", exc.code, extra={"request_id": request_id})
    headers = None
    if isinstance(exc, bp.RateLimitedError):
        headers = {"Retry-After": str(exc.retry_after)}
    return error_response(row.status, exc.code, exc.message, exc.details, headers)


def internal_error_response(request_id: str) -> JSONResponse:
    """The last-resort 500: no exception text, no traceback; the log has both."""
    return error_response(500, "internal_error", _INTERNAL.format(request_id=request_id))


async def _blockpilot_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, bp.BlockpilotError)
    return render_error(exc, request_id_of(request))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only where and what: input values are never echoed (they may be secrets).
    problems = [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "message": str(err.get("msg", "invalid")),
        }
        for err in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(p['loc'])}: {p['message']}" for p in problems[:5])
    return error_response(
        422, "invalid_request", f"Invalid request: {summary}", {"errors": problems}
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 404:
        message = "Not found; see /openapi.json for the routes of this API"
    elif status == 405:
        message = f"Method {request.method} is not allowed here"
    else:
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    return error_response(
        status, _HTTP_CODES.get(status, "http_error"), message, headers=exc.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the table's handlers; unexpected exceptions are caught by the request middleware."""
    app.add_exception_handler(bp.BlockpilotError, _blockpilot_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
