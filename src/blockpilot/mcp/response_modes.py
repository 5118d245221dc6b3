"""JSON or SSE answers on MCP streamable HTTP, chosen per session.

The streamable-HTTP transport lets a server answer each POST with one JSON body or with an
SSE stream, and clients must accept both. The stream is what lets the server send the
client requests in the middle of a call, and it is expensive: in the MCP SDK it costs about
0.5 ms a request (a task group, memory streams and the event source; measured with
``python -m bench``, a plain ``MCPServer`` tool call takes ~0.9 ms in all). blockpilot sends
a client a request mid-call in one case only: a URL elicitation during ``run_block``, for
clients on a 2025 protocol version that declare ``elicitation.url``. So the sessions of such
clients are served with SSE, and every other session with JSON.

:class:`SessionRouter` runs one SDK session manager per answer mode and sends each request
to the manager that owns its session; an ``initialize`` request (no session yet) is read to
pick the mode of the session it opens.
"""

from __future__ import annotations

import json
from collections import OrderedDict

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope, Send

_SESSION_HEADER = "mcp-session-id"
MAX_REMEMBERED_SSE_SESSIONS = 10_000
"""SSE sessions whose mode is remembered; beyond it the oldest one's requests are routed to
the JSON manager, which answers 404 (unknown session) and the client starts a new session."""


def needs_sse(body: bytes) -> bool:
    """True when *body* is an ``initialize`` of a client that may get a URL elicitation."""
    try:
        message = json.loads(body)
    except ValueError:
        return False
    if not isinstance(message, dict) or message.get("method") != "initialize":
        return False
    params = message.get("params")
    if (
        not isinstance(params, dict)
        or params.get("protocolVersion") not in HANDSHAKE_PROTOCOL_VERSIONS
    ):
        return False  # newer protocols ask for input in the result instead (no stream needed)
    capabilities = params.get("capabilities")
    elicitation = capabilities.get("elicitation") if isinstance(capabilities, dict) else None
    return isinstance(elicitation, dict) and elicitation.get("url") is not None


async def read_body(receive: Receive) -> tuple[bytes, bool]:
    """The whole request body (an MCP message: small), and whether the client disconnected
    meanwhile."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives *body* (already read) first, then whatever *receive* gives."""
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


class SessionRouter:
    """Sends each MCP request to the JSON or the SSE session manager (see the module).

    Args:
        json_manager: A running manager made with ``json_response=True``.
        sse_manager: A running manager made with ``json_response=False``.
    """

    def __init__(
        self, json_manager: StreamableHTTPSessionManager, sse_manager: StreamableHTTPSessionManager
    ) -> None:
        self._json = json_manager
        self._sse = sse_manager
        self._sse_sessions: OrderedDict[str, None] = OrderedDict()

    async def handle_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        session_id = Headers(scope=scope).get(_SESSION_HEADER)
        if session_id is not None:
            sse = session_id in self._sse_sessions
            if sse and scope.get("method") == "DELETE":
                del self._sse_sessions[session_id]
            await (self._sse if sse else self._json).handle_request(scope, receive, send)
            return
        if scope.get("method") != "POST":
            await self._json.handle_request(scope, receive, send)
            return
        body, disconnected = await read_body(receive)
        if disconnected:
            return
        replay = replay_body(body, receive)
        if not needs_sse(body):
            await self._json.handle_request(scope, replay, send)
            return

        async def remember_session(message: Message) -> None:
            if message["type"] == "http.response.start":
                opened = Headers(raw=message.get("headers", [])).get(_SESSION_HEADER)
                if opened is not None:
                    self._sse_sessions[opened] = None
                    while len(self._sse_sessions) > MAX_REMEMBERED_SSE_SESSIONS:
                        self._sse_sessions.popitem(last=False)
            await send(message)

        await self._sse.handle_request(scope, replay, remember_session)
