"""MCP over streamable HTTP, as an ASGI app that a web service mounts (``/mcp``).

Every request must carry ``Authorization: Bearer <key>``; ``authenticate(key)`` says whose
key it is and the request runs as that user. A streamable-HTTP session stays bound to the
user that opened it (the SDK answers another user's requests for it with 404).

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
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from blockpilot.errors import RateLimitedError
from blockpilot.mcp.response_modes import SessionRouter
from blockpilot.mcp.server import (
    ELICITATION_TIMEOUT_SECONDS,
    Context,
    ToolCallSlot,
    build_mcp_server,
)
from blockpilot.pilot import Pilot

logger = logging.getLogger(__name__)

Authenticate = Callable[[str], "str | None | Awaitable[str | None]"]
"""``authenticate(bearer_token) -> user_id | None`` (sync or async)."""

_current_user: ContextVar[str | None] = ContextVar("blockpilot_mcp_user", default=None)


def current_http_user(ctx: Context) -> str | None:
    """The user the HTTP layer authenticated for the request being handled."""
    return _current_user.get()


def api_key_authenticator(pilot: Pilot | Callable[[], Pilot]) -> Authenticate:
    """``authenticate`` for blockpilot's own API keys (``pilot.users.user_for_api_key``)."""

    async def authenticate(token: str) -> str | None:
        current = pilot if isinstance(pilot, Pilot) else pilot()
        user = await current.users.user_for_api_key(token)
        return None if user is None else user.id

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
        transport_security: The SDK's DNS-rebinding protection settings (off by default: every
            request needs a bearer token, which a rebinding page does not have).
        session_idle_timeout: Seconds after which an idle streamable-HTTP session is closed.
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
        session_idle_timeout: float | None = 30 * 60,
        elicitation_timeout: float = ELICITATION_TIMEOUT_SECONDS,
        rate_limit: Callable[[str], Awaitable[None]] | None = None,
        tool_call_slot: ToolCallSlot | None = None,
    ) -> None:
        self._pilot = pilot
        self._authenticate = authenticate
        self._rate_limit = rate_limit
        self._tool_call_slot = tool_call_slot
        self._json_response = json_response
        self._options: dict[str, Any] = {
            "stateless": stateless,
            "security_settings": transport_security,
            "session_idle_timeout": session_idle_timeout,
        }
        self._elicitation_timeout = elicitation_timeout
        self._manager: StreamableHTTPSessionManager | SessionRouter | None = None

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Run the MCP session manager; requests are served only inside this context."""
        pilot = self._pilot if isinstance(self._pilot, Pilot) else self._pilot()
        server = build_mcp_server(
            pilot,
            current_http_user,
            elicitation_timeout=self._elicitation_timeout,
            tool_call_slot=self._tool_call_slot,
        )

        def manager(json_response: bool) -> StreamableHTTPSessionManager:
            return StreamableHTTPSessionManager(
                app=server, json_response=json_response, **self._options
            )

        async with AsyncExitStack() as running:
            if self._json_response is None and not self._options["stateless"]:
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
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        manager = self._manager
        if manager is None:
            await _json_error(
                send,
                503,
                "unavailable",
                "The MCP endpoint is not running (its lifespan was not started)",
            )
            return
        token = _bearer(scope)
        try:
            user_id = await self._user_for(token) if token else None
        except Exception:
            logger.exception("MCP authentication failed")
            await _json_error(
                send, 500, "internal_error", "Authentication failed; see the server log"
            )
            return
        if not user_id:
            await _json_error(
                send,
                401,
                "auth_required",
                "Send 'Authorization: Bearer <api key>' with a valid blockpilot API key",
                {"WWW-Authenticate": 'Bearer realm="blockpilot"'},
            )
            return
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
        principal = AccessToken(
            token=hashlib.sha256(token.encode()).hexdigest(), client_id=user_id, scopes=[]
        )
        scope = {**scope, "user": AuthenticatedUser(principal)}
        reset = _current_user.set(user_id)
        try:
            await manager.handle_request(scope, receive, send)
        finally:
            _current_user.reset(reset)

    async def _user_for(self, token: str) -> str | None:
        user = self._authenticate(token)
        if inspect.isawaitable(user):
            user = await user
        return user or None

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


__all__ = ["Authenticate", "MCPHttpApp", "api_key_authenticator", "current_http_user"]
