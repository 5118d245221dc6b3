"""Upstream MCP sessions, one per (blockpilot user, chat session, source, token).

A session is opened (one ``initialize``) on a user's first call to a source in a chat session
and reused for their later calls; it is closed after ``IDLE_SECONDS`` without calls, when its
server goes away, and in :meth:`SessionPool.aclose` (``Pilot.close``). Closing ends the
session upstream too: streamable HTTP sends its ``DELETE``, a stdio server's process exits.
No HTTP session is ever shared between users: the user id and a digest of the token are part
of its key, so a new token opens a new session. A stdio server takes no per-user secret: one
process per source serves everyone (docs/sources.md).

A server's ``notifications/tools/list_changed`` marks its source as changed; the source
service lists the tools again before the next call (:meth:`SessionPool.take_changed`).

Each session lives in its own task, because the SDK's transport holds cancel scopes that must
be entered and left by the same task; calls reach it through a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
import httpx2
import mcp_types
from mcp import Client
from mcp.client.session import MessageHandlerFnT
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, Tool

from blockpilot.errors import (
    BlockExecutionError,
    InternalSignal,
    InvalidInputError,
    UpstreamInsufficientScopeError,
    UpstreamUnauthorizedError,
)
from blockpilot.net.client import GuardedHTTPClient
from blockpilot.sources.mcp._guarded import exception_chain, wrapped_error
from blockpilot.sources.mcp._pools import POOLS, current_pool
from blockpilot.sources.mcp._transports import AUTO, SSE, STDIO, STREAMABLE_HTTP, Endpoint
from blockpilot.sources.mcp._transports import open_transport as _open_transport
from blockpilot.sources.mcp.oauth import insufficient_scopes

logger = logging.getLogger(__name__)

IDLE_SECONDS = 300.0
CONNECT_SECONDS = 30.0
CLOSE_SECONDS = 10.0
MAX_LISTED_TOOLS = 2_000
# What the SDK's streamable HTTP transport answers when the server says 404 to a session.
SESSION_TERMINATED = "Session terminated"

Operation = Callable[[Client], Awaitable[Any]]


def _unauthorized(exc: BaseException) -> bool:
    """Whether *exc* (or anything it wraps) is an HTTP 401 from the server."""
    for err in exception_chain(exc):
        if isinstance(err, httpx2.HTTPStatusError) and err.response.status_code == 401:
            return True
        if "401" in str(err) and "nauthorized" in str(err):
            return True
    return False


@dataclass
class _Status:
    """What the HTTP layer saw: the SDK turns an HTTP 401 into a generic JSON-RPC error."""

    unauthorized: bool = False
    first_post: int | None = None  # status of the first POST (the spec's SSE fallback)
    # The scopes a 403 ``insufficient_scope`` challenge asked for (sources/mcp/oauth.py).
    missing_scopes: list[str] | None = None

    def see(self, method: str, status: int, headers: Mapping[str, str] | None = None) -> None:
        if status == 401:
            self.unauthorized = True
        if status == 403 and headers is not None:
            self.missing_scopes = insufficient_scopes(headers.get("www-authenticate"))
        if method == "POST" and self.first_post is None:
            self.first_post = status


def _client(
    endpoint: Endpoint,
    http: GuardedHTTPClient | None,
    headers: Mapping[str, str],
    *,
    on_end: Callable[[], None] | None = None,
    on_notice: Callable[[Any], Awaitable[None]] | None = None,
    auth: Any = None,
) -> tuple[Client, _Status]:
    status = _Status()
    limit = http.policy.max_response_bytes if http is not None else 0
    # Redirects: the SDK follows one only within the endpoint's origin, so the Authorization
    # header never reaches another host; each hop it follows is vetted again (guarded.py).
    transport = _open_transport(
        endpoint,
        http=http,
        headers=headers,
        max_event_bytes=limit,
        on_status=status.see,
        on_end=on_end,
        auth=auth,
    )
    # "legacy": the initialize handshake every server speaks (and one per session, countable).
    handler = cast("MessageHandlerFnT | None", on_notice)
    client = Client(transport, mode="legacy", cache=None, message_handler=handler)
    return client, status


async def list_tools(
    endpoint: Endpoint | str,
    headers: Mapping[str, str],
    *,
    http: GuardedHTTPClient | None = None,
) -> tuple[list[dict[str, Any]], Endpoint]:
    """The tools the server lists (every page), as JSON objects, and the endpoint that
    answered (``auto`` resolved: streamable HTTP, or HTTP+SSE when the server refused the
    streamable POST with a 4xx); a typed error if it cannot list them."""
    if isinstance(endpoint, str):
        endpoint = Endpoint(STREAMABLE_HTTP, endpoint)
    if endpoint.transport != AUTO:
        return await _list_tools(endpoint, headers, http), endpoint
    streamable = Endpoint(STREAMABLE_HTTP, endpoint.url)
    try:
        return await _list_tools(streamable, headers, http, fallback=True), streamable
    except _TryOlderTransport:
        sse = Endpoint(SSE, endpoint.url)
        return await _list_tools(sse, headers, http), sse


class _TryOlderTransport(InternalSignal):
    """The streamable POST answered 4xx: the server may speak the older HTTP+SSE."""


async def _list_tools(
    endpoint: Endpoint,
    headers: Mapping[str, str],
    http: GuardedHTTPClient | None,
    *,
    fallback: bool = False,
) -> list[dict[str, Any]]:
    tools: list[Tool] = []
    client, status = _client(endpoint, http, headers)
    try:
        with anyio.fail_after(CONNECT_SECONDS * 2):
            async with client:
                cursor: str | None = None
                while True:
                    page = await client.list_tools(cursor=cursor)
                    tools += page.tools
                    cursor = page.next_cursor
                    if not cursor or len(tools) >= MAX_LISTED_TOOLS:
                        break
    except Exception as exc:  # noqa: BLE001 - any failure is the server's answer to report
        refused = status.first_post
        if fallback and refused is not None and 400 <= refused < 500 and refused not in (401, 403):
            raise _TryOlderTransport() from None
        if status.unauthorized or _unauthorized(exc):
            reason = "it answered HTTP 401 (give its credentials with --header 'K: V')"
        else:
            reason = _describe(exc)
        raise InvalidInputError(
            f"Could not list the tools of the MCP server at {endpoint.where}: {reason}",
            details={"server": endpoint.where},
        ) from None
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]


def _describe(exc: BaseException) -> str:
    found = wrapped_error(exc)
    if found is not None:
        return found.message
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {str(exc)[:300]}"


@dataclass(eq=False)
class _Call:
    operation: Operation
    done: asyncio.Future[Any]
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    sent: bool = False  # handed to the SDK (it may have reached the server)


class _SessionClosed(InternalSignal):
    """The session ended before the call was answered."""


class _Session:
    """One upstream session, served by its own task until idle, gone or closed."""

    def __init__(
        self,
        key: tuple[str, ...],
        source: str,
        endpoint: Endpoint,
        headers: Mapping[str, str],
        http: GuardedHTTPClient | None,
    ) -> None:
        self.key = key
        self.source = source
        self.endpoint = endpoint
        self.headers = dict(headers)
        self.http = http
        self.queue: asyncio.Queue[_Call | None] = asyncio.Queue()  # None: stop serving
        self.closed = False
        self.ended = False  # the server went away (not our decision)
        self.in_flight: set[_Call] = set()
        self.status = _Status()
        self.task: asyncio.Task[None] | None = None
        self.gave_up: BlockExecutionError | None = None

    async def serve(self, pool: SessionPool) -> None:
        # A server that never finishes the handshake must not hold the calls queued here
        # (a cancel scope cannot span the SDK's entered task groups: a timer cancels instead).
        watchdog = asyncio.get_running_loop().call_later(pool.connect_seconds, self._give_up)
        try:
            client, self.status = _client(
                self.endpoint,
                self.http,
                self.headers,
                on_end=self._server_gone,
                on_notice=lambda message: pool._notice(self, message),
            )
            async with client, anyio.create_task_group() as tg:
                watchdog.cancel()
                while True:
                    try:
                        call = await asyncio.wait_for(self.queue.get(), pool.idle_seconds)
                    except TimeoutError:
                        if self.in_flight or not self.queue.empty():
                            continue  # idle means no call waiting and none in flight
                        break
                    if call is None:
                        break
                    call.sent = True
                    self.in_flight.add(call)
                    tg.start_soon(self._answer, client, call)
                self.closed = True  # no call is queued here from now on
                if self.ended or pool.stopping:
                    tg.cancel_scope.cancel()  # nothing more will be answered
        except BaseException as exc:  # noqa: BLE001 - failing every waiting call is the answer
            self.closed = True
            self._fail(self.gave_up or exc)
            if isinstance(exc, asyncio.CancelledError) and self.gave_up is None:
                raise
        finally:
            watchdog.cancel()
            self.closed = True
            self._fail(_SessionClosed())
            pool._forget(self)

    def stop(self) -> None:
        """Take no more calls and end (the serving task closes the session upstream)."""
        self.closed = True
        self.queue.put_nowait(None)

    def _give_up(self) -> None:
        self.gave_up = BlockExecutionError(
            f"The MCP server at {self.endpoint.where} did not complete the handshake in time"
        )
        if self.task is not None:
            self.task.cancel()

    def _server_gone(self) -> None:
        self.ended = True
        self.queue.put_nowait(None)

    async def _answer(self, client: Client, call: _Call) -> None:
        try:
            with call.scope:
                try:
                    result = await call.operation(client)
                except Exception as exc:  # noqa: BLE001 - handed to the caller
                    if not call.done.done():
                        call.done.set_exception(exc)
                    return
                if not call.done.done():
                    call.done.set_result(result)
        finally:
            self.in_flight.discard(call)

    def _fail(self, exc: BaseException) -> None:
        """Fail every call not answered yet (queued calls move to a new session if the server
        went away before they were sent)."""
        if isinstance(exc, asyncio.CancelledError):
            exc = _SessionClosed()
        for call in list(self.in_flight):
            if not call.done.done():
                call.done.set_exception(exc)
        self.in_flight.clear()
        while not self.queue.empty():
            queued = self.queue.get_nowait()
            if queued is not None and not queued.done.done():
                queued.done.set_exception(exc)


class SessionPool:
    """This process's upstream MCP sessions (per event loop)."""

    def __init__(
        self, idle_seconds: float = IDLE_SECONDS, connect_seconds: float = CONNECT_SECONDS
    ) -> None:
        self.idle_seconds = idle_seconds
        self.connect_seconds = connect_seconds
        self._sessions: dict[tuple[str, ...], _Session] = {}
        self._changed: dict[str, _Session] = {}
        self.opened = 0
        self.stopping = False

    async def call_tool(
        self,
        *,
        user_id: str,
        chat_session: str,
        source: str,
        endpoint: Endpoint | str,
        token: str | None,
        tool: str,
        arguments: dict[str, Any],
        http: GuardedHTTPClient | None = None,
    ) -> CallToolResult:
        """Call *tool* in the user's session for *source* (opened if needed).

        Raises:
            UpstreamUnauthorizedError: The server refused the token (HTTP 401).
            BlockpilotError: The request was refused by the guarded client (a blocked
                destination, a timeout, ...), as raised there.
            BlockExecutionError: Anything else that failed the call.
        """
        if isinstance(endpoint, str):
            endpoint = Endpoint(STREAMABLE_HTTP, endpoint)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        session = self._session(user_id, chat_session, source, endpoint, headers, http, token)

        async def call(client: Client) -> CallToolResult:
            return await client.call_tool(tool, arguments)

        try:
            result: CallToolResult = await self._run(session, call)
            return result
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._error(session, exc, f"the call to {tool!r}") from None

    async def _run(self, session: _Session, operation: Operation) -> Any:
        """Run *operation* in *session*; once more in a new session if the server was already
        gone before it was sent (a stdio process that died between calls)."""
        for attempt in (1, 2):
            loop = asyncio.get_running_loop()
            call = _Call(operation, loop.create_future())
            session.queue.put_nowait(call)
            try:
                return await asyncio.shield(call.done)
            except asyncio.CancelledError:
                call.scope.cancel()  # the block's time limit: stop waiting upstream too
                raise
            except _SessionClosed:
                if attempt == 2 or call.sent or not session.ended:
                    raise
                session = self._reopen(session)
            except MCPError as exc:
                # The server no longer knows the session (restarted, expired: HTTP 404); it
                # did not run the request, so it is sent again in a new session.
                if attempt == 2 or exc.error.message != SESSION_TERMINATED:
                    raise
                session.stop()
                session = self._reopen(session)
        raise AssertionError("unreachable")

    def _error(self, session: _Session, exc: Exception, what: str) -> Exception:
        missing, session.status.missing_scopes = session.status.missing_scopes, None
        if missing is not None:
            return UpstreamInsufficientScopeError(missing)
        if session.status.unauthorized or _unauthorized(exc):
            session.stop()  # a new token opens a new session
            return UpstreamUnauthorizedError()
        found = wrapped_error(exc)
        if found is not None:
            return found
        if isinstance(exc, _SessionClosed):
            reason = "the server went away (its session ended)"
        else:
            reason = _describe(exc)
        return BlockExecutionError(
            f"The MCP server at {session.endpoint.where} failed {what}: {reason}"
        )

    def _session(
        self,
        user_id: str,
        chat_session: str,
        source: str,
        endpoint: Endpoint,
        headers: Mapping[str, str],
        http: GuardedHTTPClient | None,
        token: str | None,
    ) -> _Session:
        if endpoint.transport == STDIO:
            # One process per source serves every user: it holds no per-user secret.
            digest = hashlib.sha256(repr(endpoint).encode()).hexdigest()
            key: tuple[str, ...] = (STDIO, source, digest)
        else:
            digest = hashlib.sha256((token or "").encode()).hexdigest()
            key = (user_id, chat_session, source, endpoint.transport, str(endpoint.url), digest)
        session = self._sessions.get(key)
        if session is None or session.closed:
            session = self._start(_Session(key, source, endpoint, headers, http))
        return session

    def _start(self, session: _Session) -> _Session:
        if self.stopping:
            raise BlockExecutionError("blockpilot is shutting down: no new MCP sessions")
        self._sessions[session.key] = session
        self.opened += 1
        session.task = asyncio.create_task(session.serve(self), name=f"mcp:{session.source}")
        return session

    def _reopen(self, old: _Session) -> _Session:
        current = self._sessions.get(old.key)
        if current is not None and not current.closed:
            return current
        return self._start(_Session(old.key, old.source, old.endpoint, old.headers, old.http))

    async def _notice(self, session: _Session, message: Any) -> None:
        if isinstance(message, mcp_types.ToolListChangedNotification):
            logger.info("MCP tools changed upstream", extra={"source": session.source})
            self._changed[session.source] = session

    def changed(self) -> set[str]:
        """Sources marked as changed and not listed again yet."""
        return set(self._changed)

    def take_changed(self) -> dict[str, Callable[[], Awaitable[list[dict[str, Any]]]]]:
        """Sources whose server said its tools changed since the last call, each with a way
        to list them again (through the session that heard it, or a new one like it)."""
        changed, self._changed = self._changed, {}
        return {name: self._lister(session) for name, session in changed.items()}

    def _lister(self, session: _Session) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
        async def relist() -> list[dict[str, Any]]:
            if not session.closed:

                async def listing(client: Client) -> list[Tool]:
                    found: list[Tool] = []
                    cursor: str | None = None
                    while True:
                        page = await client.list_tools(cursor=cursor)
                        found += page.tools
                        cursor = page.next_cursor
                        if not cursor or len(found) >= MAX_LISTED_TOOLS:
                            return found

                with contextlib.suppress(_SessionClosed):
                    tools = await self._run(session, listing)
                    return [
                        t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools
                    ]
            tools_json, _ = await list_tools(session.endpoint, session.headers, http=session.http)
            return tools_json

        return relist

    def open_sessions(self) -> int:
        """How many upstream sessions are open now."""
        return sum(1 for s in self._sessions.values() if not s.closed)

    def _forget(self, session: _Session) -> None:
        if self._sessions.get(session.key) is session:
            del self._sessions[session.key]

    async def aclose(self) -> None:
        """End every session upstream (DELETE, process exit), waiting up to ``CLOSE_SECONDS``."""
        self.stopping = True
        try:
            sessions = list(self._sessions.values())
            for session in sessions:
                session.queue.put_nowait(None)
            tasks = [s.task for s in sessions if s.task is not None]
            if tasks:
                _, late = await asyncio.wait(tasks, timeout=CLOSE_SECONDS)
                for task in late:
                    task.cancel()
                if late:
                    await asyncio.wait(late, timeout=CLOSE_SECONDS)
            self._sessions.clear()
            self._changed.clear()
        finally:
            self.stopping = False


def session_pool() -> SessionPool:
    """The pool of the running event loop (sessions are bound to the loop they run in)."""
    loop = asyncio.get_running_loop()
    pool = POOLS.get(loop)
    if pool is None:
        pool = POOLS[loop] = SessionPool()
    return pool


__all__ = [
    "Endpoint",
    "SessionPool",
    "current_pool",
    "list_tools",
    "session_pool",
]
