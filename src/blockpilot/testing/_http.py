"""HTTP plumbing shared by the fakes: a threaded local HTTP server with routes, recorded
requests and canned responses."""

from __future__ import annotations

import json as jsonlib
import re
import ssl
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

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
