"""MCP over streamable HTTP, as an ASGI app that a web service mounts (``/mcp``).

Every request must carry ``Authorization: Bearer <key>``; ``authenticate(key)`` says whose
key it is (a user id, or an :class:`Authenticated` naming the key too) and the request runs as
that user. A streamable-HTTP session stays bound to the
user that opened it (the SDK answers another user's requests for it with 404).

Before anything else a request's ``Origin`` and ``Host`` are checked (a foreign one is a
403: :mod:`blockpilot.mcp.origins`); each user may hold a limited number of open sessions,
and idle ones are closed (:mod:`blockpilot.mcp.session_limits`). See ``docs/mcp.md``.

Mounting it in the FastAPI service (the app's lifespan must run the handler's lifespan;
Starlette does not run the lifespan of mounted apps)::

    from starlette.routing import Route
    from blockpilot.mcp.http import MCPHttpApp, api_key_authenticator

    mcp_http = MCPHttpApp(lambda: app.state.pilot,
                          api_key_authenticator(lambda: app.state.pilot))
    app.router.routes.append(Route("/mcp", endpoint=mcp_http, methods=["GET", "POST", "DELETE"]))

    @asynccontextmanager
    async def lifespan(app):
        ...  # open the Pilot first: the handler reads it when its lifespan starts
        async with mcp_http.lifespan():
            yield

A ``Route`` (not ``Mount``) keeps ``/mcp`` itself the endpoint, without a redirect to
``/mcp/`` that MCP clients do not follow for POSTs.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import INVALID_REQUEST
from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope, Send

from blockpilot.errors import (
    BlockpilotError,
    OriginNotAllowedError,
    RateLimitedError,
    TooManySessionsError,
)
from blockpilot.mcp.origins import OriginPolicy
from blockpilot.mcp.response_modes import SessionRouter
from blockpilot.mcp.server import (
    ELICITATION_TIMEOUT_SECONDS,
    Context,
    ToolCallSlot,
    build_mcp_server,
)
from blockpilot.mcp.session_limits import Reservation, SessionLedger
from blockpilot.mcp.worker_sessions import FORWARDED, WorkerSessions
from blockpilot.pilot import Pilot

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Authenticated:
    """Whom a bearer token signs in, and which of their API keys it is (policy rules may
    narrow one key: docs/approvals.md)."""

    user_id: str
    api_key_id: str | None = None


Authenticate = Callable[[str], "str | Authenticated | None | Awaitable[str | Authenticated | None]"]
"""``authenticate(bearer_token) -> user_id | Authenticated | None`` (sync or async)."""

_current_user: ContextVar[str | None] = ContextVar("blockpilot_mcp_user", default=None)
_current_api_key: ContextVar[str | None] = ContextVar("blockpilot_mcp_api_key", default=None)
_SESSION_HEADER = "mcp-session-id"
_SERVER_ERROR = -32000  # JSON-RPC's implementation-defined server error


def current_http_user(ctx: Context) -> str | None:
    """The user the HTTP layer authenticated for the request being handled."""
    return _current_user.get()


def current_http_api_key(ctx: Context) -> str | None:
    """The API key id the HTTP layer authenticated the request being handled with."""
    return _current_api_key.get()


def api_key_authenticator(pilot: Pilot | Callable[[], Pilot]) -> Authenticate:
    """``authenticate`` for blockpilot's own API keys (``pilot.users.user_for_api_key``)."""

    async def authenticate(token: str) -> Authenticated | None:
        current = pilot if isinstance(pilot, Pilot) else pilot()
        owner = await current.users.owner_of_api_key(token)
        return None if owner is None else Authenticated(owner.user.id, owner.api_key_id)

    return authenticate


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            header = bytes(value).decode("latin-1")
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


async def _json_error(
    send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "details": {}}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _json_rpc_error(
    send: Send, status: int, rpc_code: int, exc: BlockpilotError, headers: dict[str, str]
) -> None:
    """A JSON-RPC error without id (the request is refused before it is read), carrying
    blockpilot's typed ``code`` and ``details`` in ``data``."""
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": None,
            "error": {
                "code": rpc_code,
                "message": exc.message,
                "data": {"code": exc.code, "details": exc.details},
            },
        }
    ).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _principal(user_id: str, token: str) -> AuthenticatedUser:
    """What the SDK binds a session to: the user (its ``client_id``)."""
    return AuthenticatedUser(
        AccessToken(token=hashlib.sha256(token.encode()).hexdigest(), client_id=user_id, scopes=[])
    )


class MCPHttpApp:
    """ASGI app: MCP streamable HTTP for users authenticated by bearer token.

    Args:
        pilot: The open Pilot, or a callable returning it (read when :meth:`lifespan` starts,
            so the app can be built before the Pilot is opened).
        authenticate: ``(bearer_token) -> user_id | None``, sync or async.
        json_response: Answer POSTs with one JSON body (True) or an SSE stream (False). By
            default (None) each session gets JSON unless its client may be sent a URL
            elicitation mid-call, which needs SSE (see :mod:`blockpilot.mcp.response_modes`).
        stateless: No streamable-HTTP sessions (each request stands alone; no server-to-client
            requests such as elicitation).
        transport_security: The SDK's own Host/Origin checks (off by default: *origin_policy*
            does this job).
        origin_policy: Which ``Host``/``Origin`` headers are served; by default
            :meth:`OriginPolicy.from_settings` of the Pilot's settings.
        session_idle_timeout: Seconds after which a streamable-HTTP session with no request
            in flight is closed; by default ``settings.mcp_session_idle_seconds``.
        max_sessions_per_user: Open sessions one user may hold in this process (0: no cap);
            by default ``settings.mcp_max_sessions_per_user``.
        rate_limit: ``(user_id)`` called for every authenticated request; raising
            :class:`~blockpilot.errors.RateLimitedError` answers 429 with ``Retry-After``.
        tool_call_slot: ``(user_id) -> async context manager`` held around each tool call;
            raising :class:`~blockpilot.errors.RateLimitedError` on entry answers the call
            with an error result (the user has too many tool calls in flight).
    """

    def __init__(
        self,
        pilot: Pilot | Callable[[], Pilot],
        authenticate: Authenticate,
        *,
        json_response: bool | None = None,
        stateless: bool = False,
        transport_security: TransportSecuritySettings | None = None,
        origin_policy: OriginPolicy | None = None,
        session_idle_timeout: float | None = None,
        max_sessions_per_user: int | None = None,
        elicitation_timeout: float = ELICITATION_TIMEOUT_SECONDS,
        rate_limit: Callable[[str], Awaitable[None]] | None = None,
        tool_call_slot: ToolCallSlot | None = None,
    ) -> None:
        self._pilot = pilot
        self._authenticate = authenticate
        self._rate_limit = rate_limit
        self._tool_call_slot = tool_call_slot
        self._json_response = json_response
        self._stateless = stateless
        self._transport_security = transport_security
        self._origin_policy = origin_policy
        self._session_idle_timeout = session_idle_timeout
        self._max_sessions_per_user = max_sessions_per_user
        self._elicitation_timeout = elicitation_timeout
        self._manager: StreamableHTTPSessionManager | SessionRouter | None = None
        self._origins: OriginPolicy | None = None
        self._ledger: SessionLedger | None = None
        self._workers: WorkerSessions | None = None

    def share_sessions(self, workers: WorkerSessions | None) -> None:
        """Serve the sessions of every worker of this machine, whichever worker a request
        reaches (:mod:`blockpilot.mcp.worker_sessions`); None: this process's only."""
        self._workers = workers

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Run the MCP session manager; requests are served only inside this context."""
        pilot = self._pilot if isinstance(self._pilot, Pilot) else self._pilot()
        settings = pilot.settings
        idle = self._session_idle_timeout or settings.mcp_session_idle_seconds
        cap = self._max_sessions_per_user
        ledger = SessionLedger(settings.mcp_max_sessions_per_user if cap is None else cap, idle)
        server = build_mcp_server(
            pilot,
            current_http_user,
            elicitation_timeout=self._elicitation_timeout,
            tool_call_slot=self._tool_call_slot,
            api_key_resolver=current_http_api_key,
        )

        def manager(json_response: bool) -> StreamableHTTPSessionManager:
            return StreamableHTTPSessionManager(
                app=server,
                json_response=json_response,
                stateless=self._stateless,
                security_settings=self._transport_security,
                session_idle_timeout=idle,
            )

        async with AsyncExitStack() as running:
            if self._json_response is None and not self._stateless:
                managers = manager(json_response=True), manager(json_response=False)
                for each in managers:
                    await running.enter_async_context(each.run())
                self._manager = SessionRouter(*managers)
            else:
                # One mode: the one asked for, or JSON for stateless requests (which cannot
                # carry server-to-client requests anyway).
                single = manager(json_response=self._json_response is not False)
                await running.enter_async_context(single.run())
                self._manager = single
            self._origins = self._origin_policy or OriginPolicy.from_settings(settings)
            self._ledger = None if self._stateless else ledger
            sweeper = await running.enter_async_context(anyio.create_task_group())
            if self._ledger is not None:
                sweeper.start_soon(self._expire_idle_sessions, self._ledger)
            try:
                yield
            finally:
                sweeper.cancel_scope.cancel()
                self._manager = None
                self._ledger = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        manager = self._manager
        if manager is None or self._origins is None:
            await _json_error(
                send,
                503,
                "unavailable",
                "The MCP endpoint is not running (its lifespan was not started)",
            )
            return
        try:
            self._origins.check(scope)
        except OriginNotAllowedError as exc:
            logger.warning("MCP request refused: %s", exc.message)
            await _json_rpc_error(send, 403, INVALID_REQUEST, exc, {})
            return
        if self._workers is not None:
            routed = await self._route(self._workers, scope, receive, send)
            if routed is None:
                return  # served by the worker that owns the session
            scope, receive, send = routed
        token = _bearer(scope)
        try:
            caller = await self._user_for(token) if token else None
        except Exception:
            logger.exception("MCP authentication failed")
            await _json_error(
                send, 500, "internal_error", "Authentication failed; see the server log"
            )
            return
        if caller is None:
            await _json_error(
                send,
                401,
                "auth_required",
                "Send 'Authorization: Bearer <api key>' with a valid blockpilot API key",
                {"WWW-Authenticate": 'Bearer realm="blockpilot"'},
            )
            return
        user_id = caller.user_id
        if self._rate_limit is not None:
            try:
                await self._rate_limit(user_id)
            except RateLimitedError as exc:
                await _json_error(
                    send, 429, exc.code, exc.message, {"Retry-After": str(exc.retry_after)}
                )
                return
        assert token is not None
        # The SDK binds each streamable-HTTP session to this principal.
        scope = {**scope, "user": _principal(user_id, token)}
        reset = _current_user.set(user_id)
        reset_key = _current_api_key.set(caller.api_key_id)
        try:
            await self._handle(manager, user_id, scope, receive, send)
        finally:
            _current_api_key.reset(reset_key)
            _current_user.reset(reset)

    async def _route(
        self, workers: WorkerSessions, scope: Scope, receive: Receive, send: Send
    ) -> tuple[Scope, Receive, Send] | None:
        """Forward a request for another worker's session to it (None: served there);
        otherwise the request as this worker serves it: its own session id untagged, and
        the ids of its answers tagged."""
        headers = scope.get("headers", [])
        session_id = next(
            (bytes(v).decode("latin-1") for k, v in headers if k == _SESSION_HEADER.encode()),
            None,
        )
        if session_id is not None:
            owner, sdk_id = workers.owner(session_id)
            if owner == workers.worker.id:
                scope = {
                    **scope,
                    "headers": [
                        (k, sdk_id.encode("latin-1") if k == _SESSION_HEADER.encode() else v)
                        for k, v in headers
                    ],
                }
            elif owner is not None and not scope.get(FORWARDED):
                replay = await workers.forward(owner, scope, receive, send)
                if replay is None:
                    return None
                receive = replay  # the owner is gone: its session is unknown here (404)
        return scope, receive, workers.tag_responses(send)

    async def _handle(
        self,
        manager: StreamableHTTPSessionManager | SessionRouter,
        user_id: str,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """Serve one request, keeping the session ledger up to date (if there is one)."""
        ledger = self._ledger
        if ledger is None:
            await manager.handle_request(scope, receive, send)
            return
        session_id = Headers(scope=scope).get(_SESSION_HEADER)
        if session_id is None:
            if scope.get("method") != "POST":
                await manager.handle_request(scope, receive, send)
                return
            try:
                reservation = await self._reserve(manager, ledger, user_id)
            except TooManySessionsError as exc:
                logger.info("MCP session refused: user %s is at the session cap", user_id)
                retry = {"Retry-After": str(exc.retry_after)}
                await _json_rpc_error(send, 429, _SERVER_ERROR, exc, retry)
                return
            with reservation:

                async def note_session(message: Message) -> None:
                    if message["type"] == "http.response.start" and message["status"] < 400:
                        new_id = Headers(raw=message.get("headers", [])).get(_SESSION_HEADER)
                        if new_id is not None:
                            reservation.opened(new_id)
                    await send(message)

                await manager.handle_request(scope, receive, note_session)
            return

        async def note_end(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                if status == 404 or (scope.get("method") == "DELETE" and status < 300):
                    ledger.forget(session_id)  # closed by the client, or unknown to the SDK
            await send(message)

        with ledger.in_use(session_id, user_id):
            await manager.handle_request(scope, receive, note_end)

    async def _reserve(
        self,
        manager: StreamableHTTPSessionManager | SessionRouter,
        ledger: SessionLedger,
        user_id: str,
    ) -> Reservation:
        """A place for a new session of *user_id*; at the cap, first close the user's
        sessions that have expired since the last sweep."""
        try:
            return ledger.reserve(user_id)
        except TooManySessionsError:
            expired = ledger.expire_idle(user_id)
            if not expired:
                raise
        await self._close_sessions(manager, expired)
        return ledger.reserve(user_id)

    async def _expire_idle_sessions(self, ledger: SessionLedger) -> None:
        """Close idle sessions, checking a few times per idle period."""
        interval = min(max(ledger.idle_seconds / 4, 0.05), 30.0)
        while True:
            await anyio.sleep(interval)
            manager = self._manager
            expired = ledger.expire_idle()
            if manager is not None and expired:
                await self._close_sessions(manager, expired)

    async def _close_sessions(
        self,
        manager: StreamableHTTPSessionManager | SessionRouter,
        sessions: list[tuple[str, str]],
    ) -> None:
        """End *sessions* (``(session_id, user_id)``) as their clients would: a DELETE."""
        for session_id, user_id in sessions:
            logger.info("MCP session of user %s closed after being idle", user_id)
            delivered = False

            async def receive() -> Message:
                nonlocal delivered
                if delivered:
                    return {"type": "http.disconnect"}
                delivered = True
                return {"type": "http.request", "body": b"", "more_body": False}

            async def discard(message: Message) -> None:
                pass

            scope: Scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "DELETE",
                "scheme": "http",
                "path": "/mcp",
                "raw_path": b"/mcp",
                "query_string": b"",
                "root_path": "",
                "headers": [(_SESSION_HEADER.encode(), session_id.encode())],
                "client": None,
                "server": None,
                "user": _principal(user_id, f"idle-expiry:{session_id}"),
            }
            try:
                await manager.handle_request(scope, receive, discard)
            except Exception:  # an already-gone session must not stop the sweep
                logger.exception("Closing an idle MCP session failed")

    async def _user_for(self, token: str) -> Authenticated | None:
        user = self._authenticate(token)
        if inspect.isawaitable(user):
            user = await user
        if isinstance(user, Authenticated):
            return user
        return Authenticated(user) if user else None

    async def _serve_lifespan(self, receive: Receive, send: Send) -> None:
        """The ASGI lifespan protocol, for running this app on its own (``uvicorn app``)."""
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        started = False
        try:
            async with self.lifespan():
                await send({"type": "lifespan.startup.complete"})
                started = True
                while (await receive())["type"] != "lifespan.shutdown":
                    pass
        except Exception as exc:
            logger.exception("MCP HTTP lifespan failed")
            failed = "lifespan.shutdown.failed" if started else "lifespan.startup.failed"
            await send({"type": failed, "message": type(exc).__name__})
            return
        await send({"type": "lifespan.shutdown.complete"})


__all__ = [
    "Authenticate",
    "Authenticated",
    "MCPHttpApp",
    "api_key_authenticator",
    "current_http_api_key",
    "current_http_user",
]
