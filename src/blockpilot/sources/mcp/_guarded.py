"""The ``mcp`` SDK's HTTP traffic through blockpilot's guarded client (docs/sources.md).

The SDK speaks ``httpx2``; blockpilot's guarded client is ``httpx``. :class:`GuardedTransport`
is an ``httpx2`` transport that sends every request (each redirect hop the SDK decides to
follow included) through :meth:`GuardedHTTPClient.open_stream`: the destination is vetted
against the private-address guard and pinned, so an MCP server is reached exactly like any
other block's API. The source's own origin is exempt only through the per-source view of the
guarded client (``sources/http.py``), never for other blocks.

A response body is capped: a request's answer (JSON or its event stream) at the client
policy's ``max_response_bytes``; the long-lived GET stream for server messages has no total
cap, each of its events is capped by the SDK's ``max_sse_event_size`` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import httpx2

from blockpilot.errors import BlockpilotError
from blockpilot.net.client import GuardedHTTPClient

# Read timeout of the GET stream for server messages (and of a long tool call's event
# stream): the block's own time limit ends a call that takes too long.
STREAM_READ_SECONDS = 300.0


class ResponseTooLarge(httpx2.SSEError, httpx2.StreamError):
    """A response body went over the limit (the SDK reports both kinds as a failed call)."""


class _Body(httpx2.AsyncByteStream):
    def __init__(self, response: httpx.Response, host: str, limit: int | None) -> None:
        self._response = response
        self._host = host
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        total = 0
        try:
            async for chunk in self._response.aiter_raw():
                total += len(chunk)
                if self._limit is not None and total > self._limit:
                    raise ResponseTooLarge(
                        f"the MCP server at {self._host} sent a response larger than "
                        f"{self._limit} bytes"
                    )
                yield chunk
        except httpx.TimeoutException as exc:
            raise httpx2.ReadTimeout(f"no data from {self._host} in time") from exc
        except httpx.TransportError as exc:
            raise httpx2.ReadError(f"the connection to {self._host} broke") from exc

    async def aclose(self) -> None:
        await self._response.aclose()


class GuardedTransport(httpx2.AsyncBaseTransport):
    """Sends the SDK's requests through a guarded client (see the module docstring).

    Args:
        http: The guarded client, usually a per-source view with the source's origin exempt.
        on_status: Called with each response's method, status and headers (the session pool
            reads a 401, or a 403's scope challenge, here: the SDK would turn either into a
            generic JSON-RPC error).
    """

    def __init__(self, http: GuardedHTTPClient, on_status: Any = None) -> None:
        self._http = http
        self._on_status = on_status

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        timeouts = request.extensions.get("timeout") or {}
        timeout = httpx.Timeout(
            timeouts.get("connect", self._http.policy.timeout_seconds),
            read=timeouts.get("read", STREAM_READ_SECONDS),
            write=timeouts.get("write", self._http.policy.timeout_seconds),
            pool=timeouts.get("pool", self._http.policy.timeout_seconds),
        )
        content = await request.aread() if request.method not in ("GET", "HEAD") else None
        host = request.url.host
        try:
            response = await self._http.open_stream(
                request.method,
                str(request.url),
                headers=[(k, v) for k, v in request.headers.raw if k.lower() != b"host"],
                content=content or None,
                timeout=timeout,
            )
        except BlockpilotError as exc:
            # Keep blockpilot's typed error (destination_blocked, upstream_timeout, ...): the
            # session pool finds it in what the SDK raises and hands it to the caller.
            raise _Wrapped(exc) from exc
        if self._on_status is not None:
            self._on_status(request.method, response.status_code, response.headers)
        coding = response.headers.get("content-encoding", "identity").strip().lower()
        if coding not in ("", "identity"):
            await response.aclose()
            raise httpx2.DecodingError(f"{host} sent a {coding[:20]} body though none was asked")
        streaming = request.method == "GET"
        limit = None if streaming else self._http.policy.max_response_bytes
        declared = response.headers.get("content-length", "")
        if limit is not None and declared.isdigit() and int(declared) > limit:
            await response.aclose()
            raise ResponseTooLarge(
                f"the MCP server at {host} sent a response larger than {limit} bytes"
            )
        return httpx2.Response(
            status_code=response.status_code,
            headers=[(k, v) for k, v in response.headers.raw if k.lower() != b"content-length"],
            stream=_Body(response, host, limit),
            request=request,
        )


class _Wrapped(httpx2.TransportError):
    """A blockpilot error raised while sending, carried through the SDK's transport."""

    def __init__(self, error: BlockpilotError) -> None:
        super().__init__(error.message)
        self.error = error


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """*exc* and everything it wraps: group members, causes and contexts, each once.

    The SDK reports a transport's failure wrapped in task groups and JSON-RPC errors, so what
    actually happened is found by walking all of them.
    """
    seen: set[int] = set()
    stack = [exc]
    while stack:
        err = stack.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        yield err
        if isinstance(err, BaseExceptionGroup):
            stack += list(err.exceptions)
        stack += [e for e in (err.__cause__, err.__context__) if e is not None]


def wrapped_error(exc: BaseException) -> BlockpilotError | None:
    """The blockpilot error a guarded request raised, if *exc* (or what it wraps) carries one."""
    for err in exception_chain(exc):
        if isinstance(err, _Wrapped):
            return err.error
        if isinstance(err, BlockpilotError):
            return err
    return None


def guarded_client_factory(http: GuardedHTTPClient, on_status: Any = None) -> Any:
    """An ``httpx_client_factory`` for the SDK's transports, sending through *http*."""

    def factory(
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
    ) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            transport=GuardedTransport(http, on_status),
            headers=headers,
            timeout=timeout
            or httpx2.Timeout(http.policy.timeout_seconds, read=STREAM_READ_SECONDS),
            auth=auth,
            follow_redirects=False,
            trust_env=False,
        )

    return factory
