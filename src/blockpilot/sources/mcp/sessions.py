"""Upstream MCP sessions, one per (blockpilot user, chat session, source, token).

A session is opened (one ``initialize``) on a user's first call to a source in a chat session
and reused for their later calls; it is closed after ``IDLE_SECONDS`` without calls. No
session is ever shared between users: the user id and a digest of the token are part of its
key, so a new token opens a new session (docs/sources.md).

Each session lives in its own task, because the SDK's transport holds cancel scopes that must
be entered and left by the same task; calls reach it through a queue.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import CallToolResult, Tool

from blockpilot.errors import BlockExecutionError, InvalidInputError

logger = logging.getLogger(__name__)

IDLE_SECONDS = 300.0
CONNECT_SECONDS = 30.0
# Largest server-sent event the transport buffers (a flooding server fails the call).
MAX_EVENT_BYTES = 4 * 1024 * 1024
MAX_LISTED_TOOLS = 2_000


class UpstreamUnauthorizedError(Exception):
    """The MCP server refused the token (HTTP 401)."""


def _unauthorized(exc: BaseException) -> bool:
    """Whether *exc* (or anything it wraps) is an HTTP 401 from the server."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        err = stack.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, httpx2.HTTPStatusError) and err.response.status_code == 401:
            return True
        if "401" in str(err) and "nauthorized" in str(err):
            return True
        if isinstance(err, BaseExceptionGroup):
            stack += list(err.exceptions)
        for linked in (err.__cause__, err.__context__):
            if linked is not None:
                stack.append(linked)
    return False


@dataclass
class _Status:
    """What the HTTP layer saw: the SDK turns an HTTP 401 into a generic JSON-RPC error."""

    unauthorized: bool = False


def _client(url: str, headers: Mapping[str, str]) -> tuple[Client, _Status]:
    # The SDK sends these headers only to the endpoint's origin: it follows no redirect
    # that leaves it (see mcp.client.streamable_http), so a token never reaches another host.
    http = create_mcp_http_client(
        headers=dict(headers),
        timeout=httpx2.Timeout(CONNECT_SECONDS, read=IDLE_SECONDS),
    )
    status = _Status()

    async def seen(response: httpx2.Response) -> None:
        if response.status_code == 401:
            status.unauthorized = True

    http.event_hooks["response"].append(seen)
    transport = streamable_http_client(url, http_client=http, max_sse_event_size=MAX_EVENT_BYTES)
    # "legacy": the initialize handshake every server speaks (and one per session, countable).
    return Client(transport, mode="legacy", cache=None), status


async def list_tools(url: str, headers: Mapping[str, str]) -> list[dict[str, Any]]:
    """The tools *url* lists (every page), as JSON objects; a typed error if it cannot."""
    tools: list[Tool] = []
    client, status = _client(url, headers)
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
        if status.unauthorized or _unauthorized(exc):
            reason = "it answered HTTP 401 (give its credentials with --header 'K: V')"
        else:
            reason = _describe(exc)
        raise InvalidInputError(
            f"Could not list the tools of the MCP server at {url[:200]}: {reason}",
            details={"url": url[:200]},
        ) from None
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {str(exc)[:300]}"


@dataclass
class _Call:
    tool: str
    arguments: dict[str, Any]
    done: asyncio.Future[CallToolResult]
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)


class _Session:
    """One upstream session, served by its own task until idle or broken."""

    def __init__(self, key: tuple[str, ...], url: str, headers: Mapping[str, str]) -> None:
        self.key = key
        self.url = url
        self.headers = dict(headers)
        self.queue: asyncio.Queue[_Call] = asyncio.Queue()
        self.closed = False
        self.busy = 0  # calls in flight
        self.status = _Status()
        self.task: asyncio.Task[None] | None = None

    async def serve(self, pool: SessionPool) -> None:
        try:
            client, self.status = _client(self.url, self.headers)
            async with client, anyio.create_task_group() as tg:
                while True:
                    try:
                        call = await asyncio.wait_for(self.queue.get(), pool.idle_seconds)
                    except TimeoutError:
                        if self.busy or not self.queue.empty():
                            continue  # idle means no call waiting and none in flight
                        self.closed = True  # no call is queued here from now on
                        break
                    tg.start_soon(self._answer, client, call)
        except BaseException as exc:  # noqa: BLE001 - failing every waiting call is the answer
            self._fail_pending(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self.closed = True
            pool._forget(self)

    async def _answer(self, client: Client, call: _Call) -> None:
        self.busy += 1
        try:
            await self._call(client, call)
        finally:
            self.busy -= 1

    async def _call(self, client: Client, call: _Call) -> None:
        with call.scope:
            try:
                result = await client.call_tool(call.tool, call.arguments)
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                if not call.done.done():
                    call.done.set_exception(exc)
                return
            if not call.done.done():
                call.done.set_result(result)

    def _fail_pending(self, exc: BaseException) -> None:
        while not self.queue.empty():
            call = self.queue.get_nowait()
            if not call.done.done():
                call.done.set_exception(exc)


class SessionPool:
    """This process's upstream MCP sessions (per event loop)."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._sessions: dict[tuple[str, ...], _Session] = {}
        self.opened = 0

    async def call_tool(
        self,
        *,
        user_id: str,
        chat_session: str,
        source: str,
        url: str,
        token: str | None,
        tool: str,
        arguments: dict[str, Any],
    ) -> CallToolResult:
        digest = hashlib.sha256((token or "").encode()).hexdigest()
        key = (user_id, chat_session, source, url, digest)
        session = self._sessions.get(key)
        if session is None or session.closed:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            session = _Session(key, url, headers)
            self._sessions[key] = session
            self.opened += 1
            session.task = asyncio.create_task(session.serve(self), name=f"mcp:{source}")
        loop = asyncio.get_running_loop()
        call = _Call(tool, arguments, loop.create_future())
        session.queue.put_nowait(call)
        try:
            return await asyncio.shield(call.done)
        except asyncio.CancelledError:
            call.scope.cancel()  # the block's time limit: stop waiting upstream too
            raise
        except Exception as exc:
            if session.status.unauthorized or _unauthorized(exc):
                session.closed = True  # a new token opens a new session
                raise UpstreamUnauthorizedError() from None
            raise BlockExecutionError(
                f"The MCP server at {url[:200]} failed the call to {tool!r}: {_describe(exc)}"
            ) from None

    def open_sessions(self) -> int:
        """How many upstream sessions are open now."""
        return sum(1 for s in self._sessions.values() if not s.closed)

    def _forget(self, session: _Session) -> None:
        if self._sessions.get(session.key) is session:
            del self._sessions[session.key]

    async def aclose(self) -> None:
        for session in list(self._sessions.values()):
            if session.task is not None:
                session.task.cancel()
        self._sessions.clear()


_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SessionPool] = (
    weakref.WeakKeyDictionary()
)


def session_pool() -> SessionPool:
    """The pool of the running event loop (sessions are bound to the loop they run in)."""
    loop = asyncio.get_running_loop()
    pool = _POOLS.get(loop)
    if pool is None:
        pool = _POOLS[loop] = SessionPool()
    return pool
