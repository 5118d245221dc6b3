"""MCP streamable-HTTP sessions across the workers of one machine, without client affinity.

The MCP SDK keeps a session in the memory of the process that opened it. With
``blockpilot serve --workers N`` the kernel hands each new connection to any worker, so:

* every session id a worker issues is tagged with the worker's id: ``<worker id>.<sdk id>``
  (the ``Mcp-Session-Id`` response header is rewritten; the tag is stripped again before a
  request reaches the SDK);
* a request carrying another worker's session id is forwarded, as it came (method, path,
  every header including ``Authorization`` and ``Host``, the body), over that worker's Unix
  socket (:mod:`blockpilot.workers`), and its answer is streamed back, SSE streams
  included. The owner checks the request exactly as if it had come straight to it: the
  ``Host``/``Origin`` policy, the API key, the rate limit, and the SDK's check that the
  session belongs to that user's key (another user's key gets 404). The forwarding worker
  checks nothing but ``Host``/``Origin`` first, so a request is counted once;
* a session whose owner is gone (its socket refuses) is answered like any unknown session,
  404 "Session not found", after the usual authentication: the client opens a new one.

A forwarded request is never forwarded again. See docs/deployment.md#workers.
"""

from __future__ import annotations

import contextlib
import logging
import time

import anyio
import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from blockpilot.workers import Worker, is_worker_id

logger = logging.getLogger(__name__)

FORWARDED = "blockpilot.forwarded_from_worker"
"""Scope key set on requests that reached this worker over its Unix socket."""

_SESSION_HEADER = b"mcp-session-id"
_HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade"}
)
_NOT_FORWARDED = _HOP_BY_HOP | {b"content-length"}  # set again from the body read
_DYING_SECONDS = 2.0
_HTTPX_DEFAULTS = ("accept", "accept-encoding", "user-agent", "connection")


class WorkerSessions:
    """Tags this worker's MCP session ids and forwards requests for other workers' sessions.

    Args:
        worker: This process as a worker (its id, and how to reach the others).
    """

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._clients: dict[str, httpx.AsyncClient] = {}

    def owner(self, session_id: str) -> tuple[str | None, str]:
        """``(worker id, the SDK's id)`` of a tagged session id; ``(None, id)`` otherwise."""
        tag, dot, rest = session_id.partition(".")
        if dot and rest and is_worker_id(tag):
            return tag, rest
        return None, session_id

    def tag_responses(self, send: Send) -> Send:
        """*send* with this worker's id put in front of every ``Mcp-Session-Id`` it carries."""
        prefix = self.worker.id.encode() + b"."

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers") or []
                if any(name.lower() == _SESSION_HEADER for name, _ in headers):
                    message = {
                        **message,
                        "headers": [
                            (name, prefix + value)
                            if name.lower() == _SESSION_HEADER and b"." not in value
                            else (name, value)
                            for name, value in headers
                        ],
                    }
            await send(message)

        return tagged

    async def forward(
        self, worker_id: str, scope: Scope, receive: Receive, send: Send
    ) -> Receive | None:
        """Serve the request through worker *worker_id*.

        Returns:
            None when it was served (or the client went away); otherwise the owner could
            not be reached, and the returned ``receive`` replays the body already read, for
            the caller to answer the request itself.
        """
        body, disconnected = await _read_body(receive)
        if disconnected:
            return None
        client = self._client(worker_id)
        original = {name.lower() for name, _ in scope.get("headers", [])}
        request = client.build_request(
            scope["method"],
            httpx.URL(
                scheme="http",
                host="worker",
                path=scope.get("path", "/mcp"),
                query=scope.get("query_string", b""),
            ),
            headers=[
                (name, value)
                for name, value in scope.get("headers", [])
                if name.lower() not in _NOT_FORWARDED
            ],
            content=body,
        )
        for name in _HTTPX_DEFAULTS:  # httpx's own defaults: add nothing the client did not send
            if name.encode() not in original:
                request.headers.pop(name, None)
        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError as exc:
            if await self._gone(worker_id):
                return _replay(body, receive)
            logger.warning("an MCP request could not be forwarded: %s", type(exc).__name__)
            await _unavailable(send)
            return None
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (name, value)
                        for name, value in response.headers.raw
                        if name.lower() not in _HOP_BY_HOP
                    ],
                }
            )
            await _stream_until_disconnect(response, receive, send)
        finally:
            await response.aclose()
        return None

    async def _gone(self, worker_id: str) -> bool:
        """Whether *worker_id* is gone; a worker being killed closes its connections just
        before the kernel releases its lock, so a failed connection waits a little for it."""
        deadline = time.monotonic() + _DYING_SECONDS
        while self.worker.is_alive(worker_id):
            if time.monotonic() >= deadline:
                return False
            await anyio.sleep(0.01)
        return True

    def _client(self, worker_id: str) -> httpx.AsyncClient:
        client = self._clients.get(worker_id)
        if client is None:
            client = httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(uds=self.worker.socket_address(worker_id)),
                # Tool calls and SSE streams may last long; the owner applies its own limits.
                timeout=httpx.Timeout(None, connect=10.0),
                # Idle connections are dropped before the owner's uvicorn would drop them
                # (5 s), so a request is never sent on a connection being closed.
                limits=httpx.Limits(
                    max_connections=None, max_keepalive_connections=64, keepalive_expiry=2.0
                ),
            )
            self._clients[worker_id] = client
        return client

    async def aclose(self) -> None:
        """Close the connections to the other workers."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(Exception):
                await client.aclose()


def forwarded_requests_app(mcp_app: ASGIApp) -> ASGIApp:
    """The app served on a worker's Unix socket: MCP requests forwarded by the other
    workers, marked so they are never forwarded again; anything else is a 404."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") == "/mcp":
            await mcp_app({**scope, FORWARDED: True}, receive, send)
            return
        if scope["type"] == "http":
            body = b'{"error": {"code": "not_found", "message": "Not found", "details": {}}}'
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": body})

    return app


async def _unavailable(send: Send) -> None:
    """503: the worker holding the session is alive but did not answer; retry soon."""
    body = (
        b'{"error": {"code": "unavailable", "message": "The server worker holding this MCP '
        b'session did not answer; retry shortly", "details": {}}}'
    )
    headers = [(b"content-type", b"application/json"), (b"retry-after", b"1")]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The whole request body (an MCP message: small), and whether the client left."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, receive: Receive) -> Receive:
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


async def _stream_until_disconnect(response: httpx.Response, receive: Receive, send: Send) -> None:
    """Copy the owner's response body to the client as it comes (an SSE stream may last
    long), and stop when the client disconnects. A failure of the owner mid-stream ends
    the body (an SSE client then reconnects and learns the session is gone)."""
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(watch)
        try:
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.TransportError as exc:
            logger.warning("forwarded MCP response ended early: %s", type(exc).__name__)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        group.cancel_scope.cancel()


__all__ = ["FORWARDED", "WorkerSessions", "forwarded_requests_app"]
