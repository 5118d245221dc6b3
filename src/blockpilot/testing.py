"""Local stand-ins for third-party services, for testing blocks that call them.

Every server in this module speaks the *real* wire protocol of the service it
imitates (HTTP+JSON, OAuth2 form posts and redirects, SMTP with AUTH) over a real
TCP socket bound to ``127.0.0.1`` on an ephemeral port, and runs in a background
daemon thread.  A block under test therefore talks to it with its ordinary HTTP or
SMTP client -- nothing is monkeypatched -- and the test then asserts on what the
server received.

All servers are context managers (``start()`` / ``stop()`` also work), record what
they receive in a thread-safe way, and can be reset between test phases.

Only the standard library is imported at module import time; ``aiosmtpd`` is
imported when a :class:`FakeSMTP` is started, uvicorn when :func:`serve_asgi` (which
serves an ASGI app, such as blockpilot's own, over real HTTP) is used.

Example pytest fixtures::

    import httpx
    import pytest

    from blockpilot.testing import FakeOpenAI, FakeOAuthProvider

    @pytest.fixture
    def openai_server():
        with FakeOpenAI(api_keys={"sk-test"}) as srv:
            yield srv

    def test_chat(openai_server):
        r = httpx.post(
            f"{openai_server.base_url}/chat/completions",
            headers={"Authorization": "Bearer sk-test"},
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert r.json()["choices"][0]["message"]["content"] == "echo: hi"
        assert openai_server.hits == 1
        assert openai_server.last_request.json()["model"] == "gpt-4o-mini"
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json as jsonlib
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

__all__ = [
    "FakeAnthropic",
    "FakeGitHub",
    "FakeOAuthProvider",
    "FakeOpenAI",
    "FakeSMTP",
    "LocalHTTPServer",
    "ReceivedEmail",
    "RecordedRequest",
    "Response",
    "pkce_challenge",
    "pkce_pair",
    "serve_asgi",
]

LOCALHOST = "127.0.0.1"


class _BackgroundServer:
    """The lifecycle every server here shares: ``start()`` / ``stop()`` (a second ``stop()``
    does nothing), use as a context manager, :attr:`running`, :attr:`host` and :attr:`port`.

    Subclasses implement :meth:`_serve` (start serving in the background and return the
    bound port) and :meth:`_shutdown` (stop serving).
    """

    def __init__(self, host: str) -> None:
        self._host = host
        self._port: int | None = None

    def _serve(self) -> int:
        raise NotImplementedError

    def _shutdown(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        if self._port is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        self._port = self._serve()
        return self

    def stop(self) -> None:
        if self._port is None:
            return
        try:
            self._shutdown()
        finally:
            self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._port is not None

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not running; use start() or `with`")
        return self._port


# --------------------------------------------------------------------------------------
# Shared HTTP plumbing
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RecordedRequest:
    """One HTTP request as received by a :class:`LocalHTTPServer`.

    ``path`` excludes the query string (see ``query`` / ``target``); header names in
    ``headers`` are lower-cased (repeated headers are joined with ``", "``).
    """

    method: str
    path: str
    query: dict[str, str]
    target: str
    headers: dict[str, str]
    body: bytes
    received_at: float = field(default_factory=time.time)

    def header(self, name: str, default: str | None = None) -> str | None:
        """Return a header value by case-insensitive name."""
        return self.headers.get(name.lower(), default)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """Parse the body as JSON (raises ``ValueError`` if it is not JSON)."""
        return jsonlib.loads(self.body)

    def form(self) -> dict[str, str]:
        """Parse an ``application/x-www-form-urlencoded`` body (first value wins)."""
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {key: values[0] for key, values in parsed.items()}


@dataclass
class Response:
    """An HTTP response a fake server will send.

    ``delay`` (seconds) is slept before the response is written, which is handy for
    client-timeout tests; the sleep is cut short when the server stops.
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def json(
        cls,
        data: Any,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> Response:
        merged = {"Content-Type": "application/json"}
        merged.update(headers or {})
        return cls(status, jsonlib.dumps(data).encode(), merged, delay)

    @classmethod
    def text(
        cls,
        text: str,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> Response:
        merged = {"Content-Type": "text/plain; charset=utf-8"}
        merged.update(headers or {})
        return cls(status, text.encode(), merged, delay)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Response:
        return cls(status, b"", {"Location": location})


Handler = Callable[[RecordedRequest, dict[str, str]], Response]
"""A route handler: ``(request, path_params) -> Response``."""


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


@dataclass
class _Queued:
    response: Response
    method: str | None
    path: str | None
    remaining: int


def _compile_path(template: str) -> re.Pattern[str]:
    """``/repos/{owner}/{repo}`` -> regex with named groups matching one segment each."""
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts)
    )
    return re.compile(f"^{regex}$")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], owner: LocalHTTPServer) -> None:
        self.owner = owner
        # Kept-alive connections may idle until the client closes them: don't wait for them.
        self.block_on_close = not owner.keep_alive
        super().__init__(address, _RequestHandler)
        if owner.tls is not None:
            self.socket = owner.tls.wrap_socket(self.socket, server_side=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is no error
            super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        split = urlsplit(self.path)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        request = RecordedRequest(
            method=self.command,
            path=split.path or "/",
            query=query,
            target=self.path,
            headers=headers,
            body=body,
        )
        self.server.owner._handle_request(self, request)

    def send(self, response: Response, *, keep_alive: bool) -> None:
        """Write *response*; the connection closes after it unless *keep_alive*."""
        self.close_connection = not keep_alive
        try:
            self.send_response(response.status)
            lowered = {k.lower() for k in response.headers}
            for name, value in response.headers.items():
                self.send_header(name, value)
            if "content-length" not in lowered:
                self.send_header("Content-Length", str(len(response.body)))
            if not keep_alive:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except OSError:
            self.close_connection = True  # the client went away; nothing to report

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class LocalHTTPServer(_BackgroundServer):
    """A scriptable HTTP server on ``127.0.0.1`` running in a background thread.

    Register behaviour with :meth:`add_route` (path templates like ``/items/{id}``);
    override the next response(s) with :meth:`queue_response`.  Every request is
    recorded in :attr:`requests`.  Exceptions raised by handlers become a 500 response
    and are kept in :attr:`errors`.  The concrete fakes below all build on this class.

    With ``tls`` (a server-side ``ssl.SSLContext``) it speaks HTTPS.  Each response closes
    its connection unless ``keep_alive`` is true; then connections persist (HTTP/1.1) until
    the client closes them, and :meth:`stop` does not wait for idle ones.
    """

    _poll_interval = 0.05  # how often the serving thread checks for stop(), in seconds

    def __init__(
        self,
        *,
        host: str = LOCALHOST,
        tls: ssl.SSLContext | None = None,
        keep_alive: bool = False,
    ) -> None:
        super().__init__(host)
        self.tls = tls
        self.keep_alive = keep_alive
        self._lock = threading.RLock()
        self._routes: list[_Route] = []
        self._queued: list[_Queued] = []
        self._requests: list[RecordedRequest] = []
        self._errors: list[BaseException] = []
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle ------------------------------------------------------------------

    def _serve(self) -> int:
        self._stopping.clear()
        server = _HTTPServer((self._host, 0), self)
        port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": self._poll_interval},
            name=f"{type(self).__name__}-{port}",
            daemon=True,
        )
        self._thread.start()
        return port

    def _shutdown(self) -> None:
        server, thread = self._server, self._thread
        self._stopping.set()
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    # -- addresses ------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "http" if self.tls is None else "https"

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash, no path; ``https`` with ``tls``)."""
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The URL a client should be configured with (the origin unless overridden)."""
        return self.origin

    def url(self, path: str) -> str:
        """Absolute URL for ``path`` on this server's origin."""
        return self.origin + (path if path.startswith("/") else "/" + path)

    # -- behaviour ------------------------------------------------------------------

    def add_route(self, method: str, path: str, handler: Handler | Response) -> None:
        """Serve ``method path`` with ``handler`` (or always with a fixed ``Response``).

        ``path`` may contain ``{name}`` placeholders, each matching one path segment;
        their values are passed to the handler as the second argument.  Routes added
        later take precedence.
        """
        if isinstance(handler, Response):
            fixed = handler

            def serve_fixed(request: RecordedRequest, params: dict[str, str]) -> Response:
                return fixed

            func: Handler = serve_fixed
        else:
            func = handler
        with self._lock:
            self._routes.insert(0, _Route(method.upper(), _compile_path(path), func))

    def queue_response(
        self,
        response: Response,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with ``response``.

        ``method`` / ``path`` (exact, without query) restrict which requests match; the
        request is still recorded.  Queued responses are used in FIFO order.
        """
        with self._lock:
            self._queued.append(
                _Queued(response, method.upper() if method else None, path, max(1, times))
            )

    def reset(self) -> None:
        """Forget recorded requests/errors and drop queued responses (routes stay)."""
        with self._lock:
            self._requests.clear()
            self._errors.clear()
            self._queued.clear()

    # -- recordings -----------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of all requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def hits(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def last_request(self) -> RecordedRequest | None:
        with self._lock:
            return self._requests[-1] if self._requests else None

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests whose path equals ``path`` (and method, if given)."""
        wanted = method.upper() if method else None
        return [r for r in self.requests if r.path == path and wanted in (None, r.method)]

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised by route handlers (each produced a 500 response)."""
        with self._lock:
            return list(self._errors)

    # -- internals ------------------------------------------------------------------

    def _handle_request(self, handler: _RequestHandler, request: RecordedRequest) -> None:
        """Answer one parsed request on *handler*'s connection (runs in its thread)."""
        response = self._respond(request)
        if response.delay > 0:
            self._sleep(response.delay)
        handler.send(response, keep_alive=self.keep_alive)

    def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up early if the server is stopping."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def _take_queued(self, request: RecordedRequest) -> Response | None:
        for i, queued in enumerate(self._queued):
            if queued.method not in (None, request.method):
                continue
            if queued.path not in (None, request.path):
                continue
            queued.remaining -= 1
            if queued.remaining <= 0:
                del self._queued[i]
            return queued.response
        return None

    def _respond(self, request: RecordedRequest) -> Response:
        with self._lock:
            self._requests.append(request)
            queued = self._take_queued(request)
            routes = list(self._routes)
        if queued is not None:
            return queued
        path_matched = False
        try:
            for route in routes:
                match = route.pattern.match(request.path)
                if match is None:
                    continue
                path_matched = True
                if route.method == request.method or (
                    route.method == "GET" and request.method == "HEAD"
                ):
                    return route.handler(request, match.groupdict())
            if path_matched:
                return self._method_not_allowed(request)
            return self._not_found(request)
        except Exception as exc:  # a bug in a handler: surface it to the test
            with self._lock:
                self._errors.append(exc)
            return Response.json(
                {"error": {"message": f"fake server error: {exc!r}", "type": "server_error"}},
                status=500,
            )

    def _not_found(self, request: RecordedRequest) -> Response:
        return Response.json({"error": "not_found", "path": request.path}, status=404)

    def _method_not_allowed(self, request: RecordedRequest) -> Response:
        return Response.json({"error": "method_not_allowed", "method": request.method}, 405)


def _bearer_token(request: RecordedRequest, schemes: tuple[str, ...] = ("bearer",)) -> str | None:
    value = request.header("authorization")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() not in schemes or not token.strip():
        return None
    return token.strip()


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def _count_tokens(text: str) -> int:
    return max(1, len(text.split())) if text else 0


# --------------------------------------------------------------------------------------
# LLM providers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ScriptedReply:
    content: str | None
    tool_calls: tuple[tuple[str, str, Any], ...]  # (call id, name, arguments)


def _parse_script_item(item: str | Mapping[str, Any]) -> _ScriptedReply:
    if isinstance(item, str):
        return _ScriptedReply(item, ())
    if not isinstance(item, Mapping):
        raise TypeError(f"scripted reply must be a str or a mapping, not {type(item).__name__}")
    calls = []
    for call in item.get("tool_calls", ()):
        if "name" not in call:
            raise ValueError(f"scripted tool call needs a 'name': {call!r}")
        call_id = str(call.get("id") or _new_id("call_"))
        calls.append((call_id, str(call["name"]), call.get("arguments", {})))
    content = item.get("content")
    if content is None and not calls:
        raise ValueError(f"scripted reply needs 'content' or 'tool_calls': {item!r}")
    return _ScriptedReply(None if content is None else str(content), tuple(calls))


def _text_of(content: Any) -> str:
    """Text of a chat message ``content`` that is a string or a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping):
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif "content" in part:  # e.g. Anthropic tool_result blocks
                    texts.append(_text_of(part["content"]))
        return "".join(texts)
    return str(content)


class _ScriptedLLM(LocalHTTPServer):
    """Shared key checking and reply scripting for the LLM fakes."""

    def __init__(self, api_keys: Iterable[str] | None = None, *, host: str = LOCALHOST) -> None:
        super().__init__(host=host)
        self.api_keys: set[str] = set(api_keys or ())
        self._script: deque[_ScriptedReply] = deque()

    def allow_key(self, key: str) -> None:
        """Accept ``key`` from now on (note: an empty ``api_keys`` accepts any key)."""
        with self._lock:
            self.api_keys.add(key)

    def _key_ok(self, key: str | None) -> bool:
        if not key:
            return False
        with self._lock:
            return not self.api_keys or key in self.api_keys

    def script(self, responses: Iterable[str | Mapping[str, Any]]) -> None:
        """Append scripted replies, consumed one per request; then replies echo again.

        Each item is the assistant text, or a mapping
        ``{"tool_calls": [{"name": ..., "arguments": {...}}], "content": optional}``.
        """
        parsed = [_parse_script_item(item) for item in responses]
        with self._lock:
            self._script.extend(parsed)

    @property
    def pending_script(self) -> int:
        """Number of scripted replies not yet consumed."""
        with self._lock:
            return len(self._script)

    def reset(self) -> None:
        """Also drops unconsumed scripted replies."""
        with self._lock:
            super().reset()
            self._script.clear()

    def _next_reply(self, last_user_text: str) -> _ScriptedReply:
        with self._lock:
            if self._script:
                return self._script.popleft()
        return _ScriptedReply("echo: " + last_user_text, ())


def _last_user_text(messages: Any) -> str:
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, Mapping) and message.get("role") == "user":
                return _text_of(message.get("content"))
    return ""


def _prompt_tokens(messages: Any) -> int:
    if not isinstance(messages, list):
        return 0
    return sum(
        _count_tokens(_text_of(m.get("content"))) for m in messages if isinstance(m, Mapping)
    )


class FakeOpenAI(_ScriptedLLM):
    """OpenAI-compatible Chat Completions API (``POST /v1/chat/completions``).

    ``base_url`` includes ``/v1`` (as the OpenAI SDK expects); ``/chat/completions``
    without the prefix is accepted too, as is ``GET /v1/models``.  Keys come as
    ``Authorization: Bearer <key>`` and are checked against ``api_keys`` (empty set:
    any key).  A wrong key yields the OpenAI 401 error JSON whose message *echoes the
    full key* -- deliberately hostile, so that secret scrubbing can be tested.
    Replies echo the last user message (``"echo: <text>"``) unless :meth:`script` was
    used.
    """

    def __init__(self, api_keys: Iterable[str] | None = None, *, host: str = LOCALHOST) -> None:
        super().__init__(api_keys, host=host)
        for prefix in ("/v1", ""):
            self.add_route("POST", prefix + "/chat/completions", self._chat_completions)
            self.add_route("GET", prefix + "/models", self._models)

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"

    @staticmethod
    def _error(
        message: str,
        status: int,
        code: str | None = None,
        param: str | None = None,
        type_: str = "invalid_request_error",
    ) -> Response:
        return Response.json(
            {"error": {"message": message, "type": type_, "param": param, "code": code}},
            status=status,
        )

    def _auth_error(self, request: RecordedRequest) -> Response | None:
        key = _bearer_token(request)
        if key is None:
            return self._error(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                401,
            )
        if not self._key_ok(key):
            return self._error(
                f"Incorrect API key provided: {key}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                401,
                code="invalid_api_key",
            )
        return None

    def _models(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        if (error := self._auth_error(request)) is not None:
            return error
        models = ["gpt-4o-mini", "gpt-4o"]
        data = [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "openai"}
            for m in models
        ]
        return Response.json({"object": "list", "data": data})

    def _chat_completions(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        if (error := self._auth_error(request)) is not None:
            return error
        try:
            payload = request.json()
        except ValueError:
            return self._error("We could not parse the JSON body of your request.", 400)
        if not isinstance(payload, dict):
            return self._error("We could not parse the JSON body of your request.", 400)
        if not payload.get("model"):
            return self._error("you must provide a model parameter", 400)
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._error("'messages' is a required property", 400, param="messages")

        reply = self._next_reply(_last_user_text(messages))
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        finish_reason = "stop"
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": args if isinstance(args, str) else jsonlib.dumps(args),
                    },
                }
                for call_id, name, args in reply.tool_calls
            ]
            finish_reason = "tool_calls"
        prompt_tokens = _prompt_tokens(messages)
        completion_tokens = _count_tokens(reply.content or "") + len(reply.tool_calls)
        body = {
            "id": _new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": payload["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return Response.json(body, headers={"x-request-id": _new_id("req_")})


class FakeAnthropic(_ScriptedLLM):
    """Anthropic Messages API (``POST /v1/messages``, also ``GET /v1/models``).

    ``base_url`` is the bare origin (clients append ``/v1/...``).  Requires the
    ``x-api-key`` header (checked against ``api_keys``; empty set: any key) and the
    ``anthropic-version`` header, and the ``model``, ``max_tokens`` and ``messages``
    body fields.  Replies echo the last user message unless :meth:`script` was used;
    scripted tool calls become ``tool_use`` content blocks (``stop_reason``
    ``"tool_use"``).
    """

    def __init__(self, api_keys: Iterable[str] | None = None, *, host: str = LOCALHOST) -> None:
        super().__init__(api_keys, host=host)
        self.add_route("POST", "/v1/messages", self._messages)
        self.add_route("GET", "/v1/models", self._models)

    @staticmethod
    def _error(type_: str, message: str, status: int) -> Response:
        return Response.json(
            {"type": "error", "error": {"type": type_, "message": message}},
            status=status,
            headers={"request-id": _new_id("req_")},
        )

    def _check_headers(self, request: RecordedRequest) -> Response | None:
        if not self._key_ok(request.header("x-api-key")):
            return self._error("authentication_error", "invalid x-api-key", 401)
        if not request.header("anthropic-version"):
            return self._error(
                "invalid_request_error", "anthropic-version: header is required", 400
            )
        return None

    def _models(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        if (error := self._check_headers(request)) is not None:
            return error
        data = [
            {
                "type": "model",
                "id": "claude-3-5-haiku-latest",
                "display_name": "Claude Haiku",
                "created_at": "2024-10-22T00:00:00Z",
            }
        ]
        return Response.json(
            {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[0]["id"]}
        )

    def _messages(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        if (error := self._check_headers(request)) is not None:
            return error
        try:
            payload = request.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return self._error("invalid_request_error", "request body must be JSON object", 400)
        for required in ("model", "max_tokens", "messages"):
            if required not in payload:
                return self._error("invalid_request_error", f"{required}: Field required", 400)
        messages = payload["messages"]
        reply = self._next_reply(_last_user_text(messages))
        content: list[dict[str, Any]] = []
        if reply.content is not None:
            content.append({"type": "text", "text": reply.content})
        for call_id, name, args in reply.tool_calls:
            arguments = jsonlib.loads(args) if isinstance(args, str) else args
            tool_id = call_id if call_id.startswith("toolu_") else "toolu_" + call_id
            content.append({"type": "tool_use", "id": tool_id, "name": name, "input": arguments})
        system_tokens = _count_tokens(_text_of(payload.get("system")))
        body = {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": payload["model"],
            "content": content,
            "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": _prompt_tokens(messages) + system_tokens,
                "output_tokens": _count_tokens(reply.content or "") + len(reply.tool_calls),
            },
        }
        return Response.json(body, headers={"request-id": _new_id("req_")})


# --------------------------------------------------------------------------------------
# GitHub
# --------------------------------------------------------------------------------------


class FakeGitHub(LocalHTTPServer):
    """A subset of the GitHub REST API: ``GET /repos/{owner}/{repo}/issues/{number}``
    and ``GET /user``.

    Tokens (``Authorization: Bearer <t>`` or ``token <t>``) must be in ``tokens`` or be
    added with :meth:`allow_token`; otherwise 401 ``{"message": "Bad credentials"}``.
    Every token presented (valid or not) is appended to :attr:`tokens_used`.
    ``base_url`` is the origin (the equivalent of ``https://api.github.com``).
    """

    DOCS = "https://docs.github.com/rest"

    def __init__(
        self,
        tokens: Iterable[str] | None = None,
        *,
        login: str = "octocat",
        host: str = LOCALHOST,
    ) -> None:
        super().__init__(host=host)
        self.login = login
        self._tokens: dict[str, str] = {t: login for t in tokens or ()}
        self._issues: dict[tuple[str, str, int], dict[str, Any]] = {}
        self._tokens_used: list[str] = []
        self.add_route("GET", "/user", self._user)
        self.add_route("GET", "/repos/{owner}/{repo}/issues/{number}", self._issue)

    @property
    def tokens(self) -> set[str]:
        with self._lock:
            return set(self._tokens)

    def allow_token(self, token: str, login: str | None = None) -> None:
        """Accept ``token``; ``GET /user`` will report ``login`` (default: ``self.login``)."""
        with self._lock:
            self._tokens[token] = login or self.login

    def revoke_token(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def add_issue(
        self,
        owner: str,
        repo: str,
        number: int,
        title: str,
        body: str | None = "",
        user: str = "octocat",
        *,
        state: str = "open",
    ) -> dict[str, Any]:
        """Register an issue; returns the JSON object the API will serve for it."""
        issue: dict[str, Any] = {
            "id": 1_000_000 + int(number),
            "number": int(number),
            "title": title,
            "body": body,
            "user": {"login": user, "type": "User"},
            "state": state,
            "html_url": f"https://github.com/{owner}/{repo}/issues/{number}",
            "labels": [],
            "comments": 0,
        }
        with self._lock:
            self._issues[(owner.lower(), repo.lower(), int(number))] = issue
        return dict(issue)

    @property
    def tokens_used(self) -> list[str]:
        """Tokens presented by clients, in request order (including rejected ones)."""
        with self._lock:
            return list(self._tokens_used)

    def reset(self) -> None:
        """Also clears :attr:`tokens_used` (issues and allowed tokens stay)."""
        with self._lock:
            super().reset()
            self._tokens_used.clear()

    def _not_found(self, request: RecordedRequest) -> Response:
        return Response.json({"message": "Not Found", "documentation_url": self.DOCS}, 404)

    def _authenticate(self, request: RecordedRequest) -> tuple[str | None, Response | None]:
        token = _bearer_token(request, schemes=("bearer", "token"))
        with self._lock:
            if token is not None:
                self._tokens_used.append(token)
            login = self._tokens.get(token) if token is not None else None
        if login is None:
            return None, Response.json(
                {"message": "Bad credentials", "documentation_url": self.DOCS}, 401
            )
        return login, None

    def _user(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        login, error = self._authenticate(request)
        if error is not None:
            return error
        return Response.json({"login": login, "id": 1, "type": "User"})

    def _issue(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        _, error = self._authenticate(request)
        if error is not None:
            return error
        if not params["number"].isdigit():
            return self._not_found(request)
        key = (params["owner"].lower(), params["repo"].lower(), int(params["number"]))
        with self._lock:
            issue = self._issues.get(key)
        if issue is None:
            return self._not_found(request)
        served = dict(issue, url=self.url(request.path))
        return Response.json(served)


# --------------------------------------------------------------------------------------
# OAuth2 authorization server
# --------------------------------------------------------------------------------------


def pkce_challenge(verifier: str) -> str:
    """The S256 PKCE code challenge for ``verifier`` (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_pair() -> tuple[str, str]:
    """A fresh ``(code_verifier, code_challenge)`` pair using S256."""
    verifier = secrets.token_urlsafe(48)
    return verifier, pkce_challenge(verifier)


_VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


@dataclass
class _OAuthClient:
    client_id: str
    client_secret: str | None
    redirect_uris: tuple[str, ...] | None


@dataclass
class _AuthCode:
    client_id: str
    redirect_uri: str
    code_challenge: str | None
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class _TokenRecord:
    client_id: str
    scope: str
    expires_at: float


@dataclass
class _Failure:
    status: int
    error: str


class FakeOAuthProvider(LocalHTTPServer):
    """An OAuth2 authorization server with an auto-approving consent screen.

    * ``GET /authorize`` validates ``client_id``, ``redirect_uri``, ``response_type=code``,
      ``state`` and PKCE (``code_challenge`` + ``code_challenge_method=S256``), then
      302-redirects to ``redirect_uri?code=...&state=...``.
    * ``POST /token`` (form-encoded; client auth via HTTP Basic or
      ``client_secret_post``) supports ``authorization_code`` (single-use code,
      ``redirect_uri`` and PKCE verifier checked) and ``refresh_token`` grants.
    * ``GET /userinfo`` (Bearer access token) and
      ``GET /.well-known/oauth-authorization-server`` (metadata).

    ``scopes=None`` grants what was requested; otherwise exactly ``scopes`` is granted.
    ``rotate_refresh_tokens``, ``expires_in``, ``refresh_delay`` and ``scopes`` are plain
    attributes and may be changed while the server runs.
    """

    def __init__(
        self,
        *,
        client_id: str = "test-client",
        client_secret: str | None = "test-secret",
        redirect_uris: Iterable[str] | None = None,
        scopes: Iterable[str] | None = None,
        expires_in: int = 3600,
        rotate_refresh_tokens: bool = False,
        refresh_delay: float = 0.0,
        require_pkce: bool = True,
        login: str = "octocat",
        email: str = "octocat@example.com",
        host: str = LOCALHOST,
    ) -> None:
        super().__init__(host=host)
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes: list[str] | None = list(scopes) if scopes is not None else None
        self.expires_in = expires_in
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.refresh_delay = refresh_delay
        self.require_pkce = require_pkce
        self.login = login
        self.email = email
        self._clients: dict[str, _OAuthClient] = {}
        self._codes: dict[str, _AuthCode] = {}
        self._access: dict[str, _TokenRecord] = {}
        self._refresh: dict[str, _TokenRecord] = {}  # expires_at unused here
        self._failures: deque[_Failure] = deque()
        self._deny: deque[str] = deque()
        self._refresh_count = 0
        self._token_requests = 0
        self._client_auth_methods: list[str] = []
        self.add_client(client_id, client_secret, redirect_uris)
        self.add_route("GET", "/authorize", self._authorize)
        self.add_route("POST", "/token", self._token)
        self.add_route("GET", "/userinfo", self._userinfo)
        self.add_route("GET", "/.well-known/oauth-authorization-server", self._metadata)

    # -- configuration --------------------------------------------------------------

    def add_client(
        self,
        client_id: str,
        client_secret: str | None = None,
        redirect_uris: Iterable[str] | None = None,
    ) -> None:
        """Register a client; ``client_secret=None`` makes it a public (PKCE-only) client
        and ``redirect_uris=None`` accepts any http(s) redirect URI."""
        uris = tuple(redirect_uris) if redirect_uris is not None else None
        with self._lock:
            self._clients[client_id] = _OAuthClient(client_id, client_secret, uris)

    def fail_next_refresh(
        self, status: int | None = None, error: str | None = None, *, times: int = 1
    ) -> None:
        """Make the next ``times`` refresh requests fail without touching any token.

        ``fail_next_refresh()`` -> 503 ``temporarily_unavailable``;
        ``fail_next_refresh(error="invalid_grant")`` -> 400 ``invalid_grant``;
        ``fail_next_refresh(status=500)`` -> 500 ``server_error``.
        """
        if status is None:
            status = 400 if error is not None else 503
        if error is None:
            error = (
                "temporarily_unavailable"
                if status == 503
                else ("server_error" if status >= 500 else "invalid_request")
            )
        with self._lock:
            self._failures.extend(_Failure(status, error) for _ in range(times))

    def deny_next_authorization(self, error: str = "access_denied") -> None:
        """The next ``/authorize`` redirects back with ``error=...`` instead of a code."""
        with self._lock:
            self._deny.append(error)

    def issue_tokens(
        self,
        scopes: Iterable[str] | None = None,
        expires_in: int | None = None,
        *,
        client_id: str | None = None,
    ) -> dict[str, Any]:
        """Mint a valid access/refresh token pair directly (for seeding credentials)."""
        scope = " ".join(scopes) if scopes is not None else " ".join(self.scopes or ())
        return self._mint(client_id or self.client_id, scope, expires_in)

    def revoke_refresh_token(self, refresh_token: str) -> None:
        """Invalidate a refresh token (as if the user revoked the grant)."""
        with self._lock:
            self._refresh.pop(refresh_token, None)

    def access_token_valid(self, access_token: str) -> bool:
        with self._lock:
            info = self._access.get(access_token)
            return info is not None and info.expires_at > time.time()

    def refresh_token_valid(self, refresh_token: str) -> bool:
        with self._lock:
            return refresh_token in self._refresh

    # -- counters / URLs ------------------------------------------------------------

    @property
    def refresh_count(self) -> int:
        """Number of ``grant_type=refresh_token`` requests received (incl. failed)."""
        with self._lock:
            return self._refresh_count

    @property
    def token_requests(self) -> int:
        """Number of ``POST /token`` requests received (any grant, incl. failed)."""
        with self._lock:
            return self._token_requests

    @property
    def client_auth_methods(self) -> list[str]:
        """Per successful client authentication at ``/token``: ``client_secret_basic``,
        ``client_secret_post`` or ``none``."""
        with self._lock:
            return list(self._client_auth_methods)

    @property
    def authorize_url(self) -> str:
        return self.url("/authorize")

    @property
    def token_url(self) -> str:
        return self.url("/token")

    @property
    def userinfo_url(self) -> str:
        return self.url("/userinfo")

    def reset(self) -> None:
        """Also zeroes the counters and drops pending injected failures/denials.
        Clients and issued tokens stay valid."""
        with self._lock:
            super().reset()
            self._failures.clear()
            self._deny.clear()
            self._refresh_count = 0
            self._token_requests = 0
            self._client_auth_methods.clear()

    # -- internals ------------------------------------------------------------------

    def _mint(
        self, client_id: str, scope: str, expires_in: int | None, refresh: str | None = None
    ) -> dict[str, Any]:
        lifetime = self.expires_in if expires_in is None else expires_in
        access = "at_" + secrets.token_urlsafe(24)
        refresh_token = refresh or "rt_" + secrets.token_urlsafe(24)
        with self._lock:
            self._access[access] = _TokenRecord(client_id, scope, time.time() + lifetime)
            self._refresh[refresh_token] = _TokenRecord(client_id, scope, 0.0)
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": lifetime,
            "refresh_token": refresh_token,
            "scope": scope,
        }

    def _granted_scope(self, requested: str | None) -> str:
        if self.scopes is not None:
            return " ".join(self.scopes)
        return " ".join((requested or "").split())

    @staticmethod
    def _oauth_error(
        error: str,
        description: str | None = None,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        body = {"error": error}
        if description:
            body["error_description"] = description
        merged = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        merged.update(headers or {})
        return Response.json(body, status=status, headers=merged)

    @staticmethod
    def _with_params(uri: str, params: Mapping[str, str]) -> str:
        return uri + ("&" if "?" in uri else "?") + urlencode(params)

    def _authorize(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        q = request.query
        with self._lock:
            client = self._clients.get(q.get("client_id", ""))
        if client is None:
            return self._oauth_error("invalid_client", "unknown client_id", 400)
        redirect_uri = q.get("redirect_uri", "")
        if client.redirect_uris is None:
            valid_redirect = urlsplit(redirect_uri).scheme in ("http", "https")
        else:
            valid_redirect = redirect_uri in client.redirect_uris
        if not valid_redirect:
            return self._oauth_error("invalid_request", "invalid redirect_uri", 400)

        state = q.get("state")

        def back(**values: str) -> Response:
            out = dict(values)
            if state is not None:
                out["state"] = state
            return Response.redirect(self._with_params(redirect_uri, out))

        with self._lock:
            denial = self._deny.popleft() if self._deny else None
        if denial is not None:
            return back(error=denial, error_description="the user denied the request")
        if q.get("response_type") != "code":
            return back(error="unsupported_response_type")
        if not state:
            return back(error="invalid_request", error_description="state is required")
        challenge = q.get("code_challenge")
        method = q.get("code_challenge_method")
        if challenge is None and self.require_pkce:
            return back(error="invalid_request", error_description="code_challenge required")
        if challenge is not None and method != "S256":
            return back(
                error="invalid_request",
                error_description="code_challenge_method must be S256",
            )
        code = "code_" + secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _AuthCode(
                client_id=client.client_id,
                redirect_uri=redirect_uri,
                code_challenge=challenge,
                scope=self._granted_scope(q.get("scope")),
                expires_at=time.time() + 600,
            )
        return back(code=code)

    def _authenticate_client(
        self, request: RecordedRequest, form: dict[str, str]
    ) -> tuple[_OAuthClient | None, Response | None]:
        header = request.header("authorization") or ""
        scheme, _, encoded = header.partition(" ")
        secret: str | None
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                decoded = ""
            raw_id, sep, raw_secret = decoded.partition(":")
            if not sep:
                return None, self._invalid_client(basic=True)
            client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
            method = "client_secret_basic"
        elif "client_id" in form:
            client_id, secret = form["client_id"], form.get("client_secret")
            method = "client_secret_post" if secret is not None else "none"
        else:
            return None, self._invalid_client(basic=False)
        with self._lock:
            client = self._clients.get(client_id)
        if client is None:
            return None, self._invalid_client(basic=method == "client_secret_basic")
        if client.client_secret is not None and not hmac.compare_digest(
            (secret or "").encode(), client.client_secret.encode()
        ):
            return None, self._invalid_client(basic=method == "client_secret_basic")
        with self._lock:
            self._client_auth_methods.append(method)
        return client, None

    def _invalid_client(self, *, basic: bool) -> Response:
        headers = {"WWW-Authenticate": 'Basic realm="oauth"'} if basic else None
        return self._oauth_error("invalid_client", "client authentication failed", 401, headers)

    def _token(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        with self._lock:
            self._token_requests += 1
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return self._oauth_error("invalid_request", "body must be form-encoded")
        form = request.form()
        grant_type = form.get("grant_type")
        if grant_type == "refresh_token":
            with self._lock:
                self._refresh_count += 1
        client, error = self._authenticate_client(request, form)
        if grant_type == "authorization_code":
            response = error or self._code_grant(cast(_OAuthClient, client), form)
        elif grant_type == "refresh_token":
            response = error or self._refresh_grant(cast(_OAuthClient, client), form)
            self._sleep(self.refresh_delay)
        else:
            response = error or self._oauth_error("unsupported_grant_type")
        return response

    def _token_response(self, tokens: dict[str, Any]) -> Response:
        return Response.json(tokens, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _code_grant(self, client: _OAuthClient, form: dict[str, str]) -> Response:
        now = time.time()
        with self._lock:
            record = self._codes.get(form.get("code", ""))
            if record is None or record.client_id != client.client_id:
                return self._oauth_error("invalid_grant", "unknown authorization code")
            if record.used:
                return self._oauth_error("invalid_grant", "authorization code already used")
            record.used = True
        if record.expires_at < now:
            return self._oauth_error("invalid_grant", "authorization code expired")
        if form.get("redirect_uri") != record.redirect_uri:
            return self._oauth_error("invalid_grant", "redirect_uri mismatch")
        if record.code_challenge is not None:
            verifier = form.get("code_verifier")
            if verifier is None:
                return self._oauth_error("invalid_request", "code_verifier required")
            if not _VERIFIER_RE.match(verifier) or not hmac.compare_digest(
                pkce_challenge(verifier), record.code_challenge
            ):
                return self._oauth_error("invalid_grant", "PKCE verification failed")
        return self._token_response(self._mint(client.client_id, record.scope, None))

    def _refresh_grant(self, client: _OAuthClient, form: dict[str, str]) -> Response:
        with self._lock:
            if self._failures:
                failure = self._failures.popleft()
                return self._oauth_error(failure.error, "injected failure", failure.status)
            old = form.get("refresh_token", "")
            record = self._refresh.get(old)
            if record is None or record.client_id != client.client_id:
                return self._oauth_error("invalid_grant", "invalid refresh token")
            scope = record.scope
            if form.get("scope"):
                requested = form["scope"].split()
                if not set(requested) <= set(scope.split()):
                    return self._oauth_error("invalid_scope", "scope exceeds the grant")
                scope = " ".join(requested)
            if self.rotate_refresh_tokens:
                del self._refresh[old]
                tokens = self._mint(client.client_id, scope, None)
            else:
                tokens = self._mint(client.client_id, scope, None, refresh=old)
                # keep the original grant's scope on the long-lived refresh token
                self._refresh[old] = record
        return self._token_response(tokens)

    def _userinfo(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        token = _bearer_token(request)
        if token is None or not self.access_token_valid(token):
            return Response.json(
                {"error": "invalid_token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return Response.json({"sub": self.login, "login": self.login, "email": self.email})

    def _metadata(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        return Response.json(
            {
                "issuer": self.origin,
                "authorization_endpoint": self.authorize_url,
                "token_endpoint": self.token_url,
                "userinfo_endpoint": self.userinfo_url,
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                    "none",
                ],
            }
        )


# --------------------------------------------------------------------------------------
# SMTP
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ReceivedEmail:
    """One message accepted by :class:`FakeSMTP`.

    ``message`` is parsed with ``email.policy.default``; ``raw`` is the DATA as received
    (CRLF line endings); ``login`` is the AUTH user name, or ``None`` if unauthenticated.
    """

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None
    raw: bytes

    @property
    def subject(self) -> str | None:
        subject = self.message["Subject"]
        return None if subject is None else str(subject)

    def text(self) -> str:
        """The plain-text body (the ``text/plain`` part of multipart messages)."""
        part = self.message.get_body(preferencelist=("plain",))
        if part is None:
            return ""
        return cast(str, cast(EmailMessage, part).get_content())


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _SMTPHandler:
    """aiosmtpd handler hooks (duck-typed; aiosmtpd looks up ``handle_*`` methods)."""

    def __init__(self, owner: FakeSMTP) -> None:
        self._owner = owner

    async def handle_MAIL(  # noqa: N802 - aiosmtpd hook name
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if self._owner.auth_required and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd hook name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        return self._owner._deliver(session, envelope)


class FakeSMTP(_BackgroundServer):
    """An SMTP server (``aiosmtpd``) on ``127.0.0.1`` with AUTH LOGIN/PLAIN over plaintext.

    Credentials are checked against ``username``/``password``; with ``username=None``
    any credentials are accepted and AUTH is optional.  ``auth_required`` (default:
    ``username is not None``) rejects ``MAIL FROM`` with 530 until authenticated.
    Accepted messages are in :attr:`messages`; AUTH attempts in :attr:`auth_attempts`.
    """

    def __init__(
        self,
        *,
        username: str | None = "user",
        password: str | None = "password",
        auth_required: bool | None = None,
        host: str = LOCALHOST,
    ) -> None:
        self.username = username
        self.password = password
        self.auth_required = (username is not None) if auth_required is None else auth_required
        super().__init__(host)
        self._controller: Any = None
        self._cond = threading.Condition(threading.RLock())
        self._messages: list[ReceivedEmail] = []
        self._auth_attempts: list[tuple[str, str, bool]] = []
        self._rejections: deque[str] = deque()

    # -- lifecycle ------------------------------------------------------------------

    def _serve(self) -> int:
        from aiosmtpd.controller import Controller  # lazy: optional test dependency

        port = _free_port(self._host)
        controller = Controller(
            _SMTPHandler(self),
            hostname=self._host,
            port=port,
            authenticator=self._authenticate,
            auth_require_tls=False,
        )
        controller.start()
        self._controller = controller
        return port

    def _shutdown(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    # -- recordings / behaviour -----------------------------------------------------

    @property
    def messages(self) -> list[ReceivedEmail]:
        with self._cond:
            return list(self._messages)

    @property
    def auth_attempts(self) -> list[tuple[str, str, bool]]:
        """``(mechanism, login, success)`` for every AUTH attempt."""
        with self._cond:
            return list(self._auth_attempts)

    def reject_next(self, reply: str = "550 5.7.1 Message rejected", *, times: int = 1) -> None:
        """Answer the DATA of the next ``times`` messages with ``reply`` (not recorded)."""
        with self._cond:
            self._rejections.extend(reply for _ in range(times))

    def wait_for_messages(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedEmail]:
        """Block until at least ``count`` messages arrived; raise ``TimeoutError`` else."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(f"expected {count} message(s), got {len(self._messages)}")
            return list(self._messages)

    def reset(self) -> None:
        with self._cond:
            self._messages.clear()
            self._auth_attempts.clear()
            self._rejections.clear()

    # -- aiosmtpd callbacks (run on the server's event-loop thread) -----------------

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult

        login = _decode(getattr(auth_data, "login", b""))
        password = _decode(getattr(auth_data, "password", b""))
        ok = self.username is None or (
            hmac.compare_digest(login.encode(), self.username.encode())
            and hmac.compare_digest(password.encode(), (self.password or "").encode())
        )
        with self._cond:
            self._auth_attempts.append((mechanism, login, ok))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def _deliver(self, session: Any, envelope: Any) -> str:
        with self._cond:
            if self._rejections:
                return self._rejections.popleft()
        raw = envelope.original_content or envelope.content
        raw_bytes = raw if isinstance(raw, bytes) else str(raw).encode()
        # Parse with "\n" line endings so bodies read back exactly as the sender wrote
        # them; ``raw`` keeps the bytes as received on the wire (CRLF).
        message = message_from_bytes(raw_bytes.replace(b"\r\n", b"\n"), policy=email_policy.default)
        login = getattr(session.auth_data, "login", None) if session.authenticated else None
        received = ReceivedEmail(
            mail_from=str(envelope.mail_from),
            rcpt_tos=list(envelope.rcpt_tos),
            message=message,
            login=_decode(login) if login is not None else None,
            raw=raw_bytes,
        )
        with self._cond:
            self._messages.append(received)
            self._cond.notify_all()
        return "250 Message accepted for delivery"


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


# --------------------------------------------------------------------------------------
# ASGI apps over real HTTP
# --------------------------------------------------------------------------------------


@asynccontextmanager
async def serve_asgi(
    app: Any, *, host: str = LOCALHOST, timeout: float = 15.0, **options: Any
) -> AsyncIterator[str]:
    """Serve the ASGI *app* with uvicorn on a free port of *host* (IPv4); yields its URL.

    The server is a task in the running event loop, so the app may use objects bound to
    that loop (a Pilot); it is a plain task, not a task group, so it may be entered and
    left in different tasks (as pytest-asyncio does with fixtures).  It runs with the
    service's own settings (:func:`blockpilot.api.server.server_config`: lifespan on, our
    logging) plus *options*.  Start-up and shut-down each wait at most *timeout* seconds.
    """
    import uvicorn

    from blockpilot.api.server import server_config

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(server_config(app, host=host, port=port, **options))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(timeout):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started serving")
                await asyncio.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout)
        sock.close()
