"""The guarded HTTP client every outbound request from user or model input must use."""

from __future__ import annotations

import asyncio
import copy
import json as jsonlib
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from email.message import Message
from http.cookiejar import CookieJar, DefaultCookiePolicy
from ipaddress import ip_address
from types import TracebackType
from typing import Any

import httpx

from blockpilot.errors import NetworkError, UpstreamTimeoutError
from blockpilot.net._body import ACCEPT_ENCODING, read_body
from blockpilot.net._logs import install_query_string_filter
from blockpilot.net._ranges import IPAddress, blocked_reason
from blockpilot.net._transport import Pin, PinnedTransport, pinned
from blockpilot.net.policy import DestinationPolicy
from blockpilot.net.urls import (
    Destination,
    blocked,
    blocked_address,
    is_valid_host,
    normalise_host,
    parse_destination,
    parse_ip_literal,
    parse_url,
)
from blockpilot.strict_json import replace_lone_surrogates

Resolver = Callable[[str, int], Awaitable[list[str]]]

install_query_string_filter()  # httpx logs request URLs at INFO: never their query strings

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")
# Caller headers that carry credentials of their own and must not follow a redirect
# to another origin.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_BODY_HEADERS = ("content-type", "content-length", "transfer-encoding", "content-encoding")


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve *host* with the operating system's resolver (all address families)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(slots=True)
class GuardedResponse:
    """A fully read response.

    Attributes:
        status_code: HTTP status of the final response.
        headers: Its headers, as received.
        content: The decoded body.
        url: The final URL (after redirects, without fragment).
        redirects: The URLs that answered with a redirect, in order.
    """

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str
    redirects: list[str] = field(default_factory=list)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        """The body decoded with the declared charset (UTF-8 if none or unknown)."""
        message = Message()
        message["content-type"] = self.headers.get("content-type", "")
        charset = message.get_content_charset() or "utf-8"
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """Parse the body as JSON (raises ``ValueError`` if it is not JSON).

        Lone surrogate escapes (``"\\ud800"``) become U+FFFD, as invalid bytes do in
        :attr:`text`: text that is not Unicode would break whatever it reached later.
        """
        value = jsonlib.loads(self.content)
        if _SURROGATE_ESCAPE.search(self.content):
            value = replace_lone_surrogates(value)
        return value


@dataclass(slots=True)
class _Call:
    """What one logical request sends; redirects rewrite it hop by hop."""

    method: str
    headers: httpx.Headers
    content: bytes | str | None
    json: Any
    sensitive: httpx.Headers
    host: str = ""  # of the hop in progress, for error messages
    left_origin: bool = False

    def hop_headers(self) -> httpx.Headers:
        if self.left_origin:
            drop = CREDENTIAL_HEADERS | {name.lower() for name in self.sensitive}
            return httpx.Headers([(k, v) for k, v in self.headers.items() if k.lower() not in drop])
        merged = httpx.Headers(self.headers)
        merged.update(self.sensitive)  # the stored credential wins over a caller header
        return merged

    def follow(self, status: int) -> None:
        """Apply browser semantics: 303, and 301/302 after POST, become a bodiless GET."""
        if (status == 303 and self.method != "HEAD") or (
            status in (301, 302) and self.method == "POST"
        ):
            self.method = "GET"
            self.content = self.json = None
            for name in _BODY_HEADERS:
                self.headers.pop(name, None)


def _describe(exc: httpx.TransportError) -> str:
    # Fixed wording on purpose: library messages can echo header values.
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return "TLS certificate verification failed"
        if isinstance(seen, ssl.SSLError):
            return "TLS handshake failed"
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
    if isinstance(exc, httpx.WriteError | httpx.LocalProtocolError):
        return "could not send the request"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server sent an invalid HTTP response"
    if isinstance(exc, httpx.ReadError):
        return "the connection broke while reading the response"
    return "network error"


@contextmanager
def _upstream_errors(host: str, seconds: float) -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException:
        raise _timeout(host, seconds) from None
    except httpx.TransportError as exc:
        raise NetworkError(
            f"Request to {host} failed: {_describe(exc)}.",
            details={"host": host, "error": type(exc).__name__},
        ) from None


def _timeout(host: str, seconds: float) -> UpstreamTimeoutError:
    return UpstreamTimeoutError(
        f"Request to {host} did not finish within {seconds:g} seconds.",
        details={"host": host, "timeout_seconds": seconds},
    )


def _is_localhost_name(host: str) -> bool:
    # RFC 6761: these names always mean loopback, whatever a resolver says.
    return host == "localhost" or host.endswith(".localhost")


class GuardedHTTPClient:
    """Async HTTP client that refuses internal destinations and scopes credentials.

    Every hop (first request and each redirect) is parsed, resolved once, checked
    against :mod:`blockpilot.net._ranges` and then connected to the checked address.

    Args:
        policy: Limits and exemptions; the default policy exempts nothing.
        resolver: ``async (host, port) -> [address, ...]``; defaults to the system resolver.
        transport: Replaces the pinned transport. Only for tests with mock transports:
            any other transport does its own connecting and loses the address pinning.
    """

    def __init__(
        self,
        policy: DestinationPolicy | None = None,
        *,
        resolver: Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.policy = policy or DestinationPolicy()
        self._resolver = resolver or system_resolver
        self._owns_pool = True
        self._client = httpx.AsyncClient(
            transport=transport or PinnedTransport(),
            follow_redirects=False,
            trust_env=False,  # no proxies or .netrc credentials from the environment
            # One client serves many users: never store or replay cookies.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            headers={"accept-encoding": ACCEPT_ENCODING},
            timeout=self.policy.timeout_seconds,
        )

    def with_exemptions(self, destinations: Iterable[tuple[str, int | None]]) -> GuardedHTTPClient:
        """A view of this client for one block run, with *destinations* exempt from the
        private-address guard for that run only (its provider's or source's operator-set
        base URL; see :class:`blockpilot.net.policy.TrustedDestinations`).

        The exemption holds for requests that start at one of *destinations* and their
        redirects, never for a redirect into them from another host. The view shares this
        client's connection pool; closing it closes nothing.
        """
        scoped = frozenset(destinations)
        if scoped <= self.policy.scoped_hosts:
            return self
        view = copy.copy(self)
        view.policy = replace(self.policy, scoped_hosts=self.policy.scoped_hosts | scoped)
        view._owns_pool = False
        return view

    async def __aenter__(self) -> GuardedHTTPClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close pooled connections (a view from :meth:`with_exemptions` leaves them open)."""
        if self._owns_pool:
            await self._client.aclose()

    async def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        sensitive_headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        max_bytes: int | None = None,
    ) -> GuardedResponse:
        """Send a request, follow redirects safely and read the whole body.

        Args:
            method: HTTP method.
            url: Absolute http(s) URL.
            headers: Caller headers; Authorization/Proxy-Authorization/Cookie among them
                are dropped once a redirect leaves the first origin.
            content: Raw body.
            json: Body to send as JSON.
            params: Query parameters merged into *url*.
            sensitive_headers: Credential headers, sent only to the first URL's origin
                (scheme, host, port) and never again after a hop leaves it.
            timeout: Deadline in seconds for everything; defaults to the policy's.
            max_bytes: Cap on the decoded body; defaults to the policy's.

        Raises:
            DestinationBlockedError: A hop is not http(s), carries userinfo or reaches a
                blocked address.
            ResponseTooLargeError: The body exceeds the cap.
            UpstreamTimeoutError: The deadline passed.
            NetworkError: Resolution, connection or protocol failure, or too many redirects.
        """
        seconds = self.policy.timeout_seconds if timeout is None else timeout
        limit = self.policy.max_response_bytes if max_bytes is None else max_bytes
        target = url if isinstance(url, httpx.URL) else parse_url(url)
        if params:
            target = target.copy_merge_params(dict(params))
        call = _Call(
            method=method.upper(),
            headers=httpx.Headers(headers or {}),
            content=content,
            json=json,
            sensitive=httpx.Headers(sensitive_headers or {}),
            host=target.raw_host.decode("ascii", "replace"),
        )
        try:
            async with asyncio.timeout(seconds):
                return await self._run(call, target, seconds, limit)
        except TimeoutError:
            raise _timeout(call.host, seconds) from None

    async def _run(
        self, call: _Call, url: httpx.URL, seconds: float, limit: int
    ) -> GuardedResponse:
        first: Destination | None = None
        redirects: list[str] = []
        scoped = True  # this block's own exemptions: only for a chain that starts at one
        while True:
            dest = parse_destination(url, self.policy.allowed_schemes)
            call.host = dest.host
            if first is None:
                first = dest
                scoped = self.policy.is_exempt(dest.host, dest.port)
            if dest.origin != first.origin:
                call.left_origin = True  # sticky: a later hop back does not re-arm secrets
            response = await self._send(dest, call, seconds, scoped=scoped)
            try:
                location = response.headers.get("location")
                if response.status_code not in REDIRECT_STATUSES or location is None:
                    with _upstream_errors(dest.host, seconds):
                        body = await read_body(
                            response, host=dest.host, limit=limit, head=call.method == "HEAD"
                        )
                    return GuardedResponse(
                        status_code=response.status_code,
                        headers=response.headers,
                        content=body,
                        url=str(dest.url),
                        redirects=redirects,
                    )
            finally:
                await response.aclose()
            if len(redirects) >= self.policy.max_redirects:
                raise NetworkError(
                    f"Too many redirects (max {self.policy.max_redirects})",
                    details={"host": dest.host, "max_redirects": self.policy.max_redirects},
                )
            redirects.append(str(dest.url))
            url = _join(dest, location)
            call.follow(response.status_code)

    async def _send(
        self, dest: Destination, call: _Call, seconds: float, *, scoped: bool
    ) -> httpx.Response:
        addresses = await self._vet(dest.host, dest.port, dest.ip, scoped=scoped)
        with _upstream_errors(dest.host, seconds):
            request = self._client.build_request(
                call.method,
                dest.url,
                headers=call.hop_headers(),
                content=call.content,
                json=call.json,
                timeout=seconds,
            )
            with pinned(Pin(dest.wire_host, dest.port, addresses)):
                try:
                    return await self._client.send(request, stream=True)
                except UnicodeError:
                    # httpx reads a redirect's Location (for ``next_request``) even when not
                    # following it; a host it cannot IDNA-decode raises a bare idna error.
                    raise blocked(
                        dest.host,
                        "invalid_url",
                        f"Destination blocked: {dest.host} redirected to an invalid URL.",
                    ) from None

    async def open_stream(
        self,
        method: str,
        url: str,
        *,
        headers: Sequence[tuple[bytes, bytes]] | Mapping[str, str],
        content: bytes | None,
        timeout: httpx.Timeout,
    ) -> httpx.Response:
        """Send one request and hand back its response unread, for a caller that streams the
        body (an MCP server's event stream) and applies its own size limit.

        The destination is vetted and pinned as in :meth:`request`; no redirect is followed
        (the caller decides, per hop, and each hop comes back through here). The body is
        requested without content coding. The caller must close the response.

        Raises:
            DestinationBlockedError: The URL is not http(s) or reaches a blocked address.
            UpstreamTimeoutError: Resolving or connecting took longer than *timeout*.
            NetworkError: Resolution, connection or protocol failure.
        """
        dest = parse_destination(parse_url(url), self.policy.allowed_schemes)
        seconds = timeout.connect or self.policy.timeout_seconds
        try:
            async with asyncio.timeout(seconds):
                addresses = await self._vet(dest.host, dest.port, dest.ip)
        except TimeoutError:
            raise _timeout(dest.host, seconds) from None
        sent = httpx.Headers(headers)
        sent["accept-encoding"] = "identity"
        with _upstream_errors(dest.host, seconds):
            request = self._client.build_request(
                method, dest.url, headers=sent, content=content, timeout=timeout
            )
            with pinned(Pin(dest.wire_host, dest.port, addresses)):
                return await self._client.send(request, stream=True)

    async def checked_address(self, host: str, port: int) -> str:
        """Vet a non-HTTP destination (SMTP, ...) and return the address to connect to.

        The caller must connect to the returned address, not resolve *host* again.

        Raises:
            DestinationBlockedError: The host is invalid or reaches a blocked address.
            UpstreamTimeoutError: Resolution took longer than the policy's timeout.
            NetworkError: The host does not resolve.
        """
        try:
            normal = normalise_host(host)
        except ValueError:
            normal = ""
        if not is_valid_host(normal) or not 0 < port < 65536:
            raise blocked(
                host, "invalid_host", f"Destination blocked: {host!r} is not a valid host."
            )
        seconds = self.policy.timeout_seconds
        try:
            async with asyncio.timeout(seconds):
                addresses = await self._vet(normal, port, parse_ip_literal(normal))
        except TimeoutError:
            raise _timeout(normal, seconds) from None
        return addresses[0]

    async def _vet(
        self, host: str, port: int, ip: IPAddress | None, *, scoped: bool = True
    ) -> tuple[str, ...]:
        """Resolve *host* once and check every address; return the ones to connect to."""
        exempt = self.policy.is_exempt(host, port, scoped=scoped)
        if ip is not None:
            ips: list[IPAddress] = [ip]
        elif _is_localhost_name(host) and not exempt:
            raise blocked_address(host, "loopback")
        else:
            ips = await self._resolve(host, port)
        if not exempt:
            for each in ips:
                reason = blocked_reason(each)
                if reason is not None:
                    raise blocked_address(host, reason)
        return tuple(dict.fromkeys(str(each) for each in ips))

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            answers = await self._resolver(host, port)
            ips = [ip_address(answer) for answer in answers]
        except (OSError, ValueError):
            ips = []
        if not ips:
            raise NetworkError(
                f"Could not resolve host {host}. Check the host name.", details={"host": host}
            )
        return ips


def _join(dest: Destination, location: str) -> httpx.URL:
    try:
        return dest.url.join(location)
    except httpx.InvalidURL as exc:
        raise blocked(
            dest.host,
            "invalid_url",
            f"Destination blocked: {dest.host} redirected to an invalid URL ({exc}).",
        ) from None
