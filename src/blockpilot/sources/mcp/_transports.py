"""How blockpilot reaches an MCP server: streamable HTTP, the older HTTP+SSE, or a local
command over stdio (docs/sources.md).

An :class:`Endpoint` is what a source stores about its server. :func:`open_transport` gives
the ``mcp`` SDK transport for it; HTTP transports send through the guarded client
(:mod:`blockpilot.sources.mcp._guarded`). The transport's read stream is watched so the
session pool learns at once when the server went away (a stdio process that died, a stream
that ended) and starts a new session for the next call.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TextIO

import anyio
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from blockpilot.errors import InvalidInputError
from blockpilot.net.client import GuardedHTTPClient
from blockpilot.sources.mcp._guarded import STREAM_READ_SECONDS, guarded_client_factory

STREAMABLE_HTTP = "streamable-http"
SSE = "sse"
STDIO = "stdio"
AUTO = "auto"
# What an operator may ask for; "auto" is resolved when the tools are listed.
TRANSPORT_CHOICES = (AUTO, STREAMABLE_HTTP, SSE)
_ENV_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where an MCP server is and how to talk to it.

    Attributes:
        transport: ``streamable-http``, ``sse`` or ``stdio`` (``auto`` only before listing).
        url: The server's URL (HTTP transports).
        command: The program and its arguments (stdio).
        env: Extra environment of the stdio process: ``(name, value)``, or ``(name, None)``
            to pass the variable through from blockpilot's own environment (never stored).
    """

    transport: str = STREAMABLE_HTTP
    url: str | None = None
    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str | None], ...] = ()

    @property
    def where(self) -> str:
        """How the server is named in messages (a URL, or the command's program)."""
        if self.transport == STDIO:
            return f"command {self.command[0][:100]!r}" if self.command else "command"
        return str(self.url or "")[:200]

    def to_config(self) -> dict[str, Any]:
        return {
            "transport": self.transport,
            "url": self.url,
            "command": list(self.command),
            "env": [[name, value] for name, value in self.env],
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Endpoint:
        """The endpoint of a stored listing or config (older ones: streamable HTTP at url)."""
        return cls(
            transport=str(config.get("transport") or STREAMABLE_HTTP),
            url=config.get("url") or None,
            command=tuple(str(part) for part in config.get("command") or ()),
            env=tuple((str(n), None if v is None else str(v)) for n, v in config.get("env") or ()),
        )


def parse_command(command: str) -> tuple[str, ...]:
    """``--command "uvx mcp-server-time --local-timezone UTC"`` as program and arguments."""
    try:
        parts = tuple(shlex.split(command))
    except ValueError as exc:
        raise InvalidInputError(f"--command could not be split into words: {exc}") from None
    if not parts or any("\x00" in part for part in parts):
        raise InvalidInputError("--command must name a program (and its arguments)")
    return parts


def parse_env(values: Sequence[str]) -> tuple[tuple[str, str | None], ...]:
    """``--env K=V`` (stored) and ``--env K`` (taken from blockpilot's environment at start)."""
    found: dict[str, str | None] = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not name or not set(name) <= _ENV_NAME_CHARS or name[0].isdigit() or "\x00" in text:
            raise InvalidInputError(
                f"--env {value[:40]!r}: use NAME=value, or NAME to pass it through from "
                "blockpilot's own environment",
                details={"env": name[:40]},
            )
        found[name] = text if sep else None
    return tuple(found.items())


def stdio_parameters(endpoint: Endpoint) -> StdioServerParameters:
    env = {
        name: value if value is not None else os.environ.get(name, "")
        for name, value in endpoint.env
    }
    return StdioServerParameters(
        command=endpoint.command[0], args=list(endpoint.command[1:]), env=env
    )


def _errlog() -> TextIO | int:
    # The server's stderr goes where blockpilot's goes (operators read its complaints there),
    # unless that is not a real file (an embedding application, a test capture).
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return subprocess.DEVNULL
    return sys.stderr


class _Watched:
    """A transport's read stream that reports when it ends (the server went away)."""

    def __init__(self, inner: Any, on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __aiter__(self) -> _Watched:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._inner.__anext__()
        except (StopAsyncIteration, anyio.ClosedResourceError, anyio.EndOfStream):
            self._on_end()
            raise

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except (anyio.ClosedResourceError, anyio.EndOfStream):
            self._on_end()
            raise

    async def __aenter__(self) -> _Watched:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)

    async def aclose(self) -> None:
        await self._inner.aclose()


def open_transport(
    endpoint: Endpoint,
    *,
    http: GuardedHTTPClient | None,
    headers: Mapping[str, str],
    max_event_bytes: int,
    on_status: Callable[..., None] | None = None,
    on_end: Callable[[], None] | None = None,
    auth: Any = None,
) -> AbstractAsyncContextManager[Any]:
    """The SDK transport for *endpoint*.

    Args:
        http: The guarded client requests go through (HTTP transports).
        headers: Sent with every HTTP request (the user's ``Authorization``).
        max_event_bytes: Largest server-sent event accepted.
        on_status: Called with each HTTP response's method, status and headers.
        on_end: Called once the server's message stream has ended.
        auth: An ``httpx2.Auth`` for the HTTP transports (OAuth).
    """

    @asynccontextmanager
    async def transport() -> AsyncIterator[Any]:
        async with _raw_transport(endpoint, http, headers, max_event_bytes, on_status, auth) as (
            read,
            write,
        ):
            if on_end is None:
                yield read, write
            else:
                yield _Watched(read, on_end), write

    return transport()


def _raw_transport(
    endpoint: Endpoint,
    http: GuardedHTTPClient | None,
    headers: Mapping[str, str],
    max_event_bytes: int,
    on_status: Callable[..., None] | None,
    auth: Any,
) -> AbstractAsyncContextManager[Any]:
    if endpoint.transport == STDIO:
        return stdio_client(stdio_parameters(endpoint), errlog=_errlog())  # type: ignore[arg-type]
    if http is None or endpoint.url is None:
        raise InvalidInputError("An HTTP MCP server needs a URL and the guarded client")
    factory = guarded_client_factory(http, on_status)
    if endpoint.transport == SSE:
        return sse_client(
            endpoint.url,
            headers=dict(headers),
            timeout=http.policy.timeout_seconds,
            sse_read_timeout=STREAM_READ_SECONDS,
            httpx_client_factory=factory,
            auth=auth,
        )
    return _streamable(endpoint.url, factory(headers=dict(headers), auth=auth), max_event_bytes)


@asynccontextmanager
async def _streamable(url: str, client: Any, max_event_bytes: int) -> AsyncIterator[Any]:
    async with (
        client,
        streamable_http_client(
            url, http_client=client, max_sse_event_size=max_event_bytes
        ) as streams,
    ):
        yield streams
