"""Real local HTTP(S) servers that record every hit (and the ``canary`` fixture the net and
security suites share), plus resolver and backend stubs."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Self

import httpcore
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from blockpilot.testing import LocalHTTPServer, RecordedRequest

Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


def reply(status: int = 200, body: bytes = b"ok", headers: dict[str, str] | None = None) -> Handler:
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        extra = headers or {}
        for name, value in extra.items():
            h.send_header(name, value)
        if "Content-Length" not in extra:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    return handle


def redirect(status: int, location: str) -> Handler:
    return reply(status, b"", {"Location": location})


def stream(total: int, chunk: int = 64 * 1024, interval: float = 0.0) -> Handler:
    """Close-delimited body of *total* bytes (no Content-Length), optionally trickled."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        sent = 0
        while sent < total:
            h.wfile.write(b"x" * min(chunk, total - sent))
            h.wfile.flush()
            sent += chunk
            if interval:
                time.sleep(interval)

    return handle


def stall(seconds: float) -> Handler:
    def handle(h: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        reply()(h)

    return handle


class LocalServer:
    """A loopback HTTP(S) server, running from construction on, that records every request.

    Built on :class:`blockpilot.testing.LocalHTTPServer` (with kept-alive connections);
    what that server does not do is here: any method on any path is answered by a raw
    handler that writes to the connection itself (so it can trickle, stream without a
    length or lie about it), ``reply()`` unless :meth:`route` says otherwise; and every
    request is kept as a :class:`Hit` in :attr:`hits`, a plain list a test may clear.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.hits: list[Hit] = []
        self.routes: dict[str, Handler] = {}
        self._server = _RawHandlerServer(self, tls).start()
        self.scheme = self._server.scheme
        self.port: int = self._server.port

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def close(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _RawHandlerServer(LocalHTTPServer):
    """Records each request as its owner's hit and answers it with the owner's raw handler."""

    _poll_interval = 0.01  # many servers start and stop: stop them quickly

    def __init__(self, owner: LocalServer, tls: ssl.SSLContext | None) -> None:
        super().__init__(tls=tls, keep_alive=True)
        self._owner = owner

    def _handle_request(self, handler: BaseHTTPRequestHandler, request: RecordedRequest) -> None:
        owner = self._owner
        hit = Hit(
            request.method, request.target, request.headers, request.body, handler.client_address[1]
        )
        owner.hits.append(hit)
        try:
            owner.routes.get(request.target.split("?")[0], reply())(handler)
        except OSError:
            handler.close_connection = True  # the client hung up; that is the test


@pytest.fixture(name="canary")
def canary_server() -> Iterator[LocalServer]:
    """A loopback server nothing may ever reach; tests assert it has no hits."""
    with LocalServer() as server:
        yield server


class StubResolver:
    """Resolver whose answers are scripted; a list of lists answers call by call."""

    def __init__(self, answers: dict[str, list[str] | list[list[str]]] | None = None) -> None:
        self.answers = dict(answers or {})
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        answer = self.answers.get(host)
        if answer is None:
            raise OSError(f"stub resolver: unknown host {host}")
        if answer and isinstance(answer[0], list):
            index = sum(1 for h, _ in self.calls if h == host) - 1
            return list(answer[min(index, len(answer) - 1)])  # type: ignore[arg-type]
        return list(answer)  # type: ignore[arg-type]


class FakeInternet(httpcore.AsyncNetworkBackend):
    """Network backend that routes chosen public addresses to local ports.

    Loopback addresses connect for real (so a guard bug hits the canary); any other
    unrouted address fails, so tests never touch the real internet.
    """

    def __init__(self, routes: dict[tuple[str, int], int] | None = None) -> None:
        self.routes = routes or {}
        self.connects: list[tuple[str, int]] = []
        self._real = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if (host, port) in self.routes:
            return await self._real.connect_tcp("127.0.0.1", self.routes[(host, port)], timeout)
        if ipaddress.ip_address(host).is_loopback:
            return await self._real.connect_tcp(host, port, timeout)
        raise httpcore.ConnectError(f"fake internet: no route to {host}")

    async def sleep(self, seconds: float) -> None:
        await self._real.sleep(seconds)


def make_tls(hostname: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for *hostname*: (server context, client context)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.NamedTemporaryFile("wb", suffix=".pem") as handle:
        handle.write(cert_pem + key_pem)
        handle.flush()
        server.load_cert_chain(handle.name)
    client = ssl.create_default_context(cadata=cert_pem.decode("ascii"))
    return server, client
