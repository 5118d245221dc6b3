"""An httpx transport that only connects to addresses the client has already vetted.

The client resolves and checks a host, then runs the request inside :func:`pinned`.
The network backend below refuses any TCP connection that is not to one of those
pinned addresses, so a second DNS answer (rebinding) can never be used. URLs keep the
real hostname, so ``Host``, TLS SNI, certificate checks and pool keys stay per-host.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx


@dataclass(frozen=True, slots=True)
class Pin:
    """The vetted addresses for one hop: connect to ``host:port`` only via these."""

    host: str
    port: int
    addresses: tuple[str, ...]


_current_pin: ContextVar[Pin | None] = ContextVar("blockpilot_net_pin", default=None)


@contextmanager
def pinned(pin: Pin) -> Iterator[None]:
    """Make *pin* the only addresses new connections in this context may use."""
    token = _current_pin.set(pin)
    try:
        yield
    finally:
        _current_pin.reset(token)


class PinnedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Connects to the pinned address instead of resolving the hostname again."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pin = _current_pin.get()
        if pin is None or (pin.host, pin.port) != (host, port) or not pin.addresses:
            # Fail closed: an unvetted connection is a bug, never a fallback to DNS.
            raise httpcore.ConnectError(f"No vetted address for {host}:{port}")
        error: Exception | None = None
        for address in pin.addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc  # dual-stack hosts: try the next vetted address
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("Unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@contextmanager
def _httpx_errors() -> Iterator[None]:
    """Re-raise httpcore errors as the httpx error of the same name."""
    try:
        yield
    except Exception as exc:
        if not type(exc).__module__.startswith("httpcore"):
            raise
        for cls in type(exc).__mro__:
            target = getattr(httpx, cls.__name__, None)
            if isinstance(target, type) and issubclass(target, httpx.TransportError):
                raise target(str(exc)) from exc
        raise httpx.TransportError(str(exc)) from exc


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterator[bytes] | Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            with _httpx_errors():
                await self._stream.aclose()


class PinnedTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 connection pool whose connections go only to pinned addresses.

    Args:
        ssl_context: TLS settings; defaults to httpx's verifying context.
        network_backend: The backend that opens sockets (tests swap it).
        max_connections: Pool size across all hosts.
        max_keepalive_connections: Idle connections kept for reuse.
        keepalive_expiry: Seconds an idle connection is kept.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
        keepalive_expiry: float = 5.0,
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
            http1=True,
            http2=False,
            retries=0,
            network_backend=PinnedNetworkBackend(network_backend),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = await self._pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
