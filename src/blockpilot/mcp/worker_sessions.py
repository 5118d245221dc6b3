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

import asyncio
import contextlib
import logging
import time

import anyio
import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from blockpilot.mcp.response_modes import read_body, replay_body
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
_KEEP_IDLE_SECONDS = 2.0  # below uvicorn's keep-alive timeout (5 s) on the owner's socket
_READ_CHUNK = 65_536


class WorkerSessions:
    """Tags this worker's MCP session ids and forwards requests for other workers' sessions.

    Args:
        worker: This process as a worker (its id, and how to reach the others).
    """

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._idle: dict[str, list[_Connection]] = {}

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
        body, disconnected = await read_body(receive)
        if disconnected:
            return None
        headers = [
            (bytes(name), bytes(value))
            for name, value in scope.get("headers", [])
            if name.lower() not in _NOT_FORWARDED
        ]
        if not any(name == b"host" for name, _ in headers):
            return replay_body(body, receive)  # HTTP/1.0 without Host: not forwarded (unknown, 404)
        target = scope.get("raw_path") or scope.get("path", "/mcp").encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        request = h11.Request(
            method=scope["method"],
            target=target,
            headers=[*headers, (b"content-length", str(len(body)).encode())],
        )
        try:
            connection, response = await self._send(worker_id, request, body)
        except (OSError, h11.ProtocolError) as exc:
            if await self._gone(worker_id):
                return replay_body(body, receive)
            logger.warning("an MCP request could not be forwarded: %s", type(exc).__name__)
            await _unavailable(send)
            return None
        reusable = False
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (name, value) for name, value in response.headers if name not in _HOP_BY_HOP
                    ],
                }
            )
            reusable = await _stream_until_disconnect(connection, receive, send)
        finally:
            if reusable:
                self._idle.setdefault(worker_id, []).append(connection)
            else:
                connection.close()
        return None

    async def _send(
        self, worker_id: str, request: h11.Request, body: bytes
    ) -> tuple[_Connection, h11.Response]:
        """Send *request* to the worker and read its response head. A kept-alive connection
        that the owner closed meanwhile is replaced once by a fresh one (the owner never
        read the request)."""
        connection = self._idle_connection(worker_id)
        fresh = connection is None
        if connection is None:
            connection = await _Connection.open(self.worker.socket_address(worker_id))
        try:
            return connection, await connection.request(request, body)
        except (OSError, h11.ProtocolError, _Closed):
            connection.close()
            if fresh:
                raise
        connection = await _Connection.open(self.worker.socket_address(worker_id))
        try:
            return connection, await connection.request(request, body)
        except _Closed:
            connection.close()
            raise ConnectionResetError("the worker closed the connection") from None
        except BaseException:
            connection.close()
            raise

    def _idle_connection(self, worker_id: str) -> _Connection | None:
        idle = self._idle.get(worker_id, [])
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            connection.close()
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

    async def aclose(self) -> None:
        """Close the idle connections to the other workers."""
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()


class _Closed(Exception):  # noqa: N818 - a signal, not an error
    """The owner closed the connection before answering."""


class _Connection:
    """One HTTP/1.1 connection to a worker's Unix socket (h11 over asyncio streams: a
    fraction of a general-purpose client's cost per request)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.http = h11.Connection(h11.CLIENT)
        self.idle_since = time.monotonic()

    @classmethod
    async def open(cls, address: str) -> _Connection:
        reader, writer = await asyncio.open_unix_connection(address, limit=_READ_CHUNK)
        return cls(reader, writer)

    def usable(self) -> bool:
        """Idle briefly enough that the owner has not dropped it (uvicorn: after 5 s), and
        not closed by it."""
        fresh = time.monotonic() - self.idle_since < _KEEP_IDLE_SECONDS
        return fresh and not self.reader.at_eof() and not self.writer.is_closing()

    async def request(self, request: h11.Request, body: bytes) -> h11.Response:
        data = self.http.send(request) or b""
        if body:
            data += self.http.send(h11.Data(data=body)) or b""
        data += self.http.send(h11.EndOfMessage()) or b""
        self.writer.write(data)
        await self.writer.drain()
        event = await self.next_event()
        while isinstance(event, h11.InformationalResponse):
            event = await self.next_event()
        if not isinstance(event, h11.Response):
            raise _Closed()
        return event

    async def next_event(self) -> h11.Event:
        """The owner's next event; a closed connection raises :class:`_Closed`."""
        while True:
            event = self.http.next_event()
            if event is h11.NEED_DATA:
                self.http.receive_data(await self.reader.read(_READ_CHUNK))
                continue
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                raise _Closed()  # PAUSED: only after a complete response (never read on)
            assert isinstance(event, h11.Event)
            return event

    def done(self) -> bool:
        """The exchange ended cleanly and the connection may carry another."""
        if self.http.our_state is h11.DONE and self.http.their_state is h11.DONE:
            self.http.start_next_cycle()
            self.idle_since = time.monotonic()
            return True
        return False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


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


async def _stream_until_disconnect(connection: _Connection, receive: Receive, send: Send) -> bool:
    """Copy the owner's response body to the client as it comes (an SSE stream may last
    long), and stop when the client disconnects. A failure of the owner mid-stream ends
    the body (an SSE client then reconnects and learns the session is gone). True when the
    connection to the owner may be used again."""
    finished = False
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(watch)
        try:
            while True:
                event = await connection.next_event()
                if isinstance(event, h11.Data):
                    body = bytes(event.data)
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                elif isinstance(event, h11.EndOfMessage):
                    finished = True
                    break
        except (OSError, h11.ProtocolError, _Closed) as exc:
            logger.warning("forwarded MCP response ended early: %s", type(exc).__name__)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        group.cancel_scope.cancel()
    return finished and connection.done()
