"""HTTP calls to a provider's OAuth endpoints (token, userinfo, metadata, registration).

Their URLs are operator-set, hence trusted, so they do not go through the SSRF guard of
:mod:`blockpilot.net` (tests point them at ``127.0.0.1``). They are still outbound calls
carrying client secrets and refresh tokens, so:

* ``trust_env=False``: no ``HTTP(S)_PROXY``/``ALL_PROXY`` and no ``.netrc`` from the
  process environment; a stray proxy variable would hand every refresh token to the proxy,
  or (a dead proxy) break every refresh;
* the body is streamed and refused past :data:`MAX_RESPONSE_BYTES` (decoded, so a gzip
  bomb counts at its real size): a token answer is a few hundred bytes;
* a per-operation timeout as before, plus a deadline for the whole call (a server that
  trickles a byte at a time never trips a per-read timeout);
* redirects are not followed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx

from blockpilot.net import ACCEPT_ENCODING, read_body

MAX_RESPONSE_BYTES = 1024 * 1024
"""The most a token or userinfo endpoint may answer (decoded bytes)."""


@dataclass(frozen=True, slots=True)
class EndpointResponse:
    """A complete, size-checked answer of an OAuth endpoint."""

    status_code: int
    content: bytes
    headers: httpx.Headers = field(default_factory=httpx.Headers)

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None."""
        try:
            value = json.loads(self.content)
        except (ValueError, RecursionError):
            return None
        return value if isinstance(value, dict) else None

    def token_payload(self) -> dict[str, Any]:
        """A token endpoint's answer: JSON, or form-encoded (GitHub without ``Accept``)."""
        value = self.json_object()
        if value is not None:
            return value
        try:
            text = self.content.decode("utf-8")
            return dict(parse_qsl(text, keep_blank_values=True))
        except ValueError:
            return {}


async def call_endpoint(
    method: str,
    url: str,
    *,
    timeout: float,
    data: Mapping[str, str] | None = None,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    limit: int = MAX_RESPONSE_BYTES,
) -> EndpointResponse:
    """Send one request to an OAuth endpoint and read its answer under *limit* bytes.

    Args:
        method: ``GET`` or ``POST``.
        url: The endpoint (operator-set).
        timeout: Seconds for each connect/read/write, and for the whole call.
        data: A form body.
        json: A JSON body (dynamic client registration, an MCP server's probe).
        headers: Extra request headers.
        limit: The most body bytes (decoded) accepted.

    Raises:
        httpx.HTTPError: the endpoint could not be reached, or did not answer in time.
        ResponseTooLargeError: the answer is larger than *limit*.
        NetworkError: the compressed answer is corrupt.
    """
    sent = {"Accept-Encoding": ACCEPT_ENCODING, **(headers or {})}
    host = httpx.URL(url).host
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream(method, url, data=data, json=json, headers=sent) as response,
        ):
            body = await read_body(response, host=host, limit=limit, head=False)
    except TimeoutError:
        raise httpx.ReadTimeout(f"no complete answer from {host} within {timeout}s") from None
    return EndpointResponse(response.status_code, body, response.headers)
