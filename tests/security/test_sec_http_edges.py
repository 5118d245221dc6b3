"""HTTP edges of a served blockpilot: slow request heads and the trailing-slash redirect.

- A client that trickles a partial request line or header block (or sends nothing) is
  disconnected after ``BLOCKPILOT_HEADER_TIMEOUT_SECONDS``; uvicorn alone held it forever
  (docs/configuration.md).
- A path with a stray trailing slash is a 404: Starlette's redirect built its ``Location``
  from the ``Host`` header, an open redirect for anyone who can forge it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from blockpilot.api import create_app
from blockpilot.api.server import server_config
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from tests.security.sec_helpers import serve_app

GUARD_SECONDS = 30.0
"""How long a test waits for the server to hang up before calling it held (old behaviour)."""


@pytest.fixture
def pilot_settings(settings_factory: Callable[..., Any]) -> Settings:
    return settings_factory()


@pytest.fixture
async def served(pilot: Pilot) -> AsyncIterator[tuple[str, int]]:
    async with serve_app(create_app(pilot), header_timeout_seconds=1.0) as url:
        parts = urlsplit(url)
        assert parts.hostname and parts.port
        yield parts.hostname, parts.port


async def _held_until_closed(
    host: str, port: int, pieces: list[bytes], *, every: float = 0.1
) -> bytes:
    """Send *pieces* one at a time, then keep trickling one header byte at a time; returns
    what the server sent before it hung up. Fails if it still listens after GUARD_SECONDS."""
    reader, writer = await asyncio.open_connection(host, port)
    received = b""
    queue = list(pieces)
    try:
        async with asyncio.timeout(GUARD_SECONDS):
            while True:
                writer.write(queue.pop(0) if queue else b"a")
                await writer.drain()
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), every)
                except TimeoutError:
                    continue  # still connected: trickle on
                if not chunk:
                    return received
                received += chunk
    except ConnectionError:
        return received
    finally:
        writer.close()


async def test_a_trickled_request_line_is_disconnected(served: tuple[str, int]) -> None:
    host, port = served
    line = b"GET /api/v1/blocks?query=" + b"x" * 20
    got = await _held_until_closed(host, port, [bytes([b]) for b in line])
    assert got == b""  # no request was served


async def test_trickled_headers_are_disconnected(served: tuple[str, int]) -> None:
    host, port = served
    head = [b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n", b"X-Slow: "]
    assert await _held_until_closed(host, port, head) == b""


async def test_a_silent_connection_is_disconnected(served: tuple[str, int]) -> None:
    host, port = served
    reader, writer = await asyncio.open_connection(host, port)
    try:
        async with asyncio.timeout(GUARD_SECONDS):
            assert await reader.read(65536) == b""
    finally:
        writer.close()


async def test_a_slow_second_request_on_a_kept_alive_connection_is_disconnected(
    served: tuple[str, int],
) -> None:
    host, port = served
    first = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    got = await _held_until_closed(host, port, [first, b"GET /hea", b"lthz HTTP/1.1\r\nX: "])
    assert got.startswith(b"HTTP/1.1 200") and got.count(b"HTTP/1.1") == 1, got


async def test_whole_heads_are_served_beside_a_slow_client(
    served: tuple[str, int], pilot: Pilot
) -> None:
    """The deadline is for the head only: a request whose head arrived in time is served
    even when its body and the answer take longer, and other users are unaffected."""
    host, port = served
    _, key = await pilot.users.create("bob")
    slow = asyncio.create_task(_held_until_closed(host, port, [b"GET / HTTP/1.1\r\n"]))
    reader, writer = await asyncio.open_connection(host, port)
    body = b'{"query": "email"}'
    writer.write(
        b"POST /api/v1/tools/find_block HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
    )
    await writer.drain()
    await asyncio.sleep(1.5)  # past the head deadline: the body is still welcome
    writer.write(body)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), GUARD_SECONDS)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert await slow == b""


# ------------------------------------------------------------------ trailing-slash redirect

SLASHED = [
    "/api/v1/blocks/",
    "/api/v1/executions/",
    "/api/v1/credentials/",
    "/api/v1/tools/find_block/",
    "/readyz/",
    "/healthz/",
    "/mcp/",
]


@pytest.mark.parametrize("path", SLASHED)
async def test_a_trailing_slash_is_not_redirected_to_the_host_header(
    pilot: Pilot, path: str
) -> None:
    _, key = await pilot.users.create("alice")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(pilot)),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}", "Host": "evil.example"},
    ) as client:
        for method in ("GET", "POST"):
            response = await client.request(method, path)
            assert "location" not in response.headers, (method, response.headers)
            assert response.status_code in (401, 404, 405), (method, response.status_code)
            assert b"evil.example" not in response.content


async def test_a_trailing_slash_over_a_real_socket_is_a_404(served: tuple[str, int]) -> None:
    host, port = served
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /healthz/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), GUARD_SECONDS)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 404"), answer[:200]
    assert b"location" not in answer.lower() and b"evil.example" not in answer


def test_server_config_uses_the_head_deadline() -> None:
    config = server_config(create_app(), host="127.0.0.1", port=0, header_timeout_seconds=3)
    config.load()
    assert config.http_protocol_class.header_timeout_seconds == 3  # type: ignore[attr-defined]
