"""ASGI middleware: request ids and access logs (with the last-resort 500), body size limits.

Both are plain ASGI middleware rather than ``BaseHTTPMiddleware``: they never buffer a body
and they see exceptions as they are.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from blockpilot.api.errors import error_response, internal_error_response, render_error
from blockpilot.api.logs import log_info
from blockpilot.errors import InternalSignal, RequestTooLargeError
from blockpilot.ids import random_hex128
from blockpilot.storage.engine import is_database_unavailable

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("blockpilot.api.access")

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID_HEADER_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
_MAX_LOGGED_PATH = 300
# Setup links and OAuth start links are credentials: their tokens never reach a log line.
_LINK_TOKEN = re.compile(r"^/(setup|oauth/start)/[^/]+")
_LINK_PREFIXES = ("/setup/", "/oauth/start/")  # what _LINK_TOKEN can match at all


# Which fields of the access line can hold a secret, and so are scrubbed (docs/deployment.md,
# "the access line"):
# - the message and the method and path: the client's request line (the message is scrubbed
#   whole, not built from the scrubbed path: a secret can span the joins, "path 200");
# - the request id when the client sent it (X-Request-Id);
# not a request id of random_hex128's, nor the user id (a UUID our database made for the row,
# set by sign-in), which hold no client's text. Such a value could still spell a short
# registered secret by chance (a 6-digit password in random hex), as the status and duration
# always could (numbers are never scrubbed): it tells nothing of the secret.
_MADE_HERE = frozenset({"request_id", "user_id"})
_MADE_HERE_BESIDE_A_CLIENTS_ID = frozenset({"user_id"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _logged_path(scope: Scope) -> str:
    # The raw (still percent-encoded) path: no control characters can reach the log line.
    raw = scope.get("raw_path")
    path = bytes(raw).decode("latin-1") if raw else str(scope.get("path", ""))
    if "?" in path:
        path = path.split("?", 1)[0]
    if path.startswith(_LINK_PREFIXES):  # the regular expression only where it can match
        path = _LINK_TOKEN.sub(r"/\1/[token]", path)
    return path if len(path) <= _MAX_LOGGED_PATH else path[:_MAX_LOGGED_PATH] + "..."


class RequestContextMiddleware:
    """Gives every request an id, logs one line per request, and answers unexpected errors.

    The id is the client's ``X-Request-Id`` when it is a short token, else a new one; it
    is echoed in the response header and in 500 messages. The access line holds method,
    path, status, duration, request id and the user id once authentication has set it,
    never headers or bodies. An exception nothing else handled is logged with its
    traceback and answered with a bare 500 (see :func:`internal_error_response`).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client_id = _header(scope, b"x-request-id")
        if client_id and _CLIENT_REQUEST_ID.match(client_id):
            request_id, made_here = client_id, _MADE_HERE_BESIDE_A_CLIENTS_ID
        else:
            request_id, made_here = random_hex128(), _MADE_HERE
        request_id_header = (_REQUEST_ID_HEADER_KEY, request_id.encode("latin-1"))
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message["headers"] = [*message.get("headers", ()), request_id_header]
            await send(message)

        began = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if is_database_unavailable(exc):
                # Not a bug: the database is restarting or unreachable. 503, retry shortly.
                logger.warning(
                    "database unavailable: %s", type(exc).__name__, extra={"request_id": request_id}
                )
                if started:
                    raise
                await database_unavailable_response(request_id)(scope, receive, send_with_id)
                return
            logger.exception("unhandled error", extra={"request_id": request_id})
            if started:
                raise  # too late for an error response; the server closes the connection
            await internal_error_response(request_id)(scope, receive, send_with_id)
        finally:
            duration_ms = round((time.perf_counter() - began) * 1000, 1)
            method, path, user_id = (
                scope.get("method", ""),
                _logged_path(scope),
                state.get("user_id"),
            )
            log_info(  # access_logger.info(...), without a LogRecord where it can
                access_logger,
                "%s %s %s %sms",
                (method, path, status, duration_ms),
                {
                    "request_id": request_id,
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": duration_ms,
                    "user_id": user_id,
                },
                made_here=made_here,
            )


DATABASE_RETRY_AFTER_SECONDS = 5


def database_unavailable_response(request_id: str) -> Response:
    """503 while the database cannot be reached (the service recovers by itself)."""
    return error_response(
        503,
        "database_unavailable",
        f"The database is unavailable; try again shortly (request id {request_id})",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


class _BodyTooLarge(InternalSignal):
    """A body went over the route's limit while being read: answered 413."""


class BodySizeLimitMiddleware:
    """Answers 413 for bodies over the route's limit, before the application reads them all.

    A declared ``Content-Length`` over the limit is refused without reading a byte; bodies
    without one (chunked) are counted as they stream and cut off at the limit.

    Args:
        app: The wrapped application.
        limit_for: The limit in bytes for a request scope.
    """

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[Scope], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, limit)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        error = RequestTooLargeError(
            f"Request body is larger than this route's limit of {limit} bytes",
            details={"limit_bytes": limit},
        )
        request_id = str(scope.get("state", {}).get("request_id", "-"))
        await render_error(error, request_id)(scope, receive, send)
