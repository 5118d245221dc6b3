"""Body caps, decompression bombs, deadlines, error hygiene and response helpers."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
import tracemalloc
import zlib

import httpx
import pytest

from blockpilot.errors import NetworkError, ResponseTooLargeError, UpstreamTimeoutError
from blockpilot.net import DestinationPolicy, GuardedHTTPClient, GuardedResponse
from tests.net.net_servers import LocalServer, StubResolver, reply, stall, stream

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def bomb() -> bytes:
    # 64 MiB of zeros compress to about 64 KiB.
    return gzip.compress(b"\0" * (64 * MiB), compresslevel=9)


def _client(*servers: LocalServer, **limits: object) -> GuardedHTTPClient:
    policy = DestinationPolicy.from_host_list([f"127.0.0.1:{s.port}" for s in servers], **limits)
    return GuardedHTTPClient(policy, resolver=StubResolver())


async def test_close_delimited_body_over_the_cap(server: LocalServer) -> None:
    server.route("/big", stream(8 * MiB))
    async with _client(server) as client:
        with pytest.raises(ResponseTooLargeError) as info:
            await client.request("GET", server.url("/big"), max_bytes=MiB)
    assert info.value.details == {"host": "127.0.0.1", "limit": MiB}


async def test_policy_cap_applies_by_default(server: LocalServer) -> None:
    server.route("/big", reply(body=b"x" * 2048))
    async with _client(server, max_response_bytes=1024) as client:
        with pytest.raises(ResponseTooLargeError):
            await client.request("GET", server.url("/big"))


async def test_body_exactly_at_the_cap_is_fine(server: LocalServer) -> None:
    server.route("/exact", stream(MiB))
    async with _client(server) as client:
        response = await client.request("GET", server.url("/exact"), max_bytes=MiB)
    assert len(response.content) == MiB


async def test_declared_content_length_is_refused_up_front(server: LocalServer) -> None:
    server.route("/liar", reply(body=b"tiny", headers={"Content-Length": str(50 * MiB)}))
    async with _client(server) as client:
        started = time.monotonic()
        with pytest.raises(ResponseTooLargeError):
            await client.request("GET", server.url("/liar"), max_bytes=MiB, timeout=5)
        assert time.monotonic() - started < 2
        head = await client.request("HEAD", server.url("/liar"), max_bytes=MiB)
    assert head.status_code == 200 and head.content == b""


async def test_gzip_bomb_is_stopped_at_the_cap(server: LocalServer, bomb: bytes) -> None:
    server.route("/bomb", reply(body=bomb, headers={"Content-Encoding": "gzip"}))
    async with _client(server) as client:
        tracemalloc.start()
        try:
            with pytest.raises(ResponseTooLargeError):
                await client.request("GET", server.url("/bomb"), max_bytes=MiB)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert len(bomb) < MiB
    assert peak < 8 * MiB  # never near the 64 MiB the bomb expands to


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate stream
        ("identity", lambda data: data),
    ],
)
async def test_compressed_bodies_are_decoded(
    encoding: str, encode: object, server: LocalServer
) -> None:
    payload = b"hello world " * 1000
    server.route("/z", reply(body=encode(payload), headers={"Content-Encoding": encoding}))  # type: ignore[operator]
    async with _client(server) as client:
        response = await client.request("GET", server.url("/z"))
    assert response.content == payload
    assert server.hits[0].headers["accept-encoding"] == "gzip, deflate"


async def test_unknown_encoding_is_returned_raw(server: LocalServer) -> None:
    server.route("/br", reply(body=b"\x8b\x00raw", headers={"Content-Encoding": "br"}))
    async with _client(server) as client:
        response = await client.request("GET", server.url("/br"))
    assert response.content == b"\x8b\x00raw"
    assert response.headers["content-encoding"] == "br"


async def test_corrupt_gzip_is_a_network_error(server: LocalServer) -> None:
    server.route("/bad", reply(body=b"not gzip at all", headers={"Content-Encoding": "gzip"}))
    async with _client(server) as client:
        with pytest.raises(NetworkError, match="corrupt compressed body"):
            await client.request("GET", server.url("/bad"))


async def test_trickling_body_hits_the_deadline(server: LocalServer) -> None:
    server.route("/slow", stream(10 * MiB, chunk=16, interval=0.05))
    async with _client(server) as client:
        started = time.monotonic()
        with pytest.raises(UpstreamTimeoutError) as info:
            await client.request("GET", server.url("/slow"), timeout=0.8)
    assert time.monotonic() - started < 1.5
    assert info.value.code == "upstream_timeout"
    assert "0.8 seconds" in info.value.message


async def test_slow_headers_hit_the_policy_deadline(server: LocalServer) -> None:
    server.route("/stall", stall(3))
    async with _client(server, timeout_seconds=0.5) as client:
        with pytest.raises(UpstreamTimeoutError, match="127.0.0.1"):
            await client.request("GET", server.url("/stall"))


async def test_slow_resolver_hits_the_deadline() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        await asyncio.sleep(5)
        return ["93.184.215.14"]

    async with GuardedHTTPClient(resolver=resolver) as client:
        with pytest.raises(UpstreamTimeoutError, match="slow.test"):
            await client.request("GET", "http://slow.test/", timeout=0.3)


async def test_connection_errors_carry_no_secrets() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket closes
    policy = DestinationPolicy.from_host_list([f"127.0.0.1:{port}"])
    async with GuardedHTTPClient(policy, resolver=StubResolver()) as client:
        with pytest.raises(NetworkError) as info:
            await client.request(
                "GET",
                f"http://127.0.0.1:{port}/path?api_key=query-secret",
                headers={"Authorization": "Bearer header-secret"},
                sensitive_headers={"X-Api-Key": "sensitive-secret"},
            )
    error = info.value
    assert type(error) is NetworkError and "could not connect" in error.message
    text = f"{error} {error!r} {error.details}"
    assert not any(s in text for s in ("query-secret", "header-secret", "sensitive-secret"))


async def test_invalid_header_value_error_has_no_value(server: LocalServer) -> None:
    async with _client(server) as client:
        with pytest.raises(NetworkError) as info:
            await client.request(
                "GET", server.url(), sensitive_headers={"X-Api-Key": "sec\nret-value"}
            )
    assert "ret-value" not in f"{info.value} {info.value.details}"
    assert server.hits == []


async def test_response_helpers(server: LocalServer) -> None:
    server.route(
        "/latin",
        reply(
            body="café".encode("latin-1"),
            headers={"Content-Type": "text/plain; charset=ISO-8859-1"},
        ),
    )
    server.route(
        "/json", reply(body=b'{"a": [1, 2]}', headers={"Content-Type": "application/json"})
    )
    server.route(
        "/bad", reply(body=b"\xff\xfeok", headers={"Content-Type": "text/plain; charset=nope"})
    )
    async with _client(server) as client:
        latin = await client.request("GET", server.url("/latin"))
        data = await client.request("GET", server.url("/json"))
        bad = await client.request("GET", server.url("/bad"))
    assert isinstance(latin, GuardedResponse) and latin.text == "café"
    assert data.json() == {"a": [1, 2]} and data.is_success
    assert data.headers["content-type"] == "application/json"
    assert bad.text == "\ufffd\ufffdok"


async def test_json_params_and_pooling(server: LocalServer) -> None:
    server.route("/echo", reply(201, b"{}", {"Set-Cookie": "sid=abc; Path=/"}))
    async with _client(server) as client:
        first = await client.request(
            "POST", server.url("/echo?a=1"), json={"k": "v"}, params={"b": "2"}
        )
        await client.request("GET", server.url("/echo"))
    assert first.status_code == 201
    post, get = server.hits
    assert post.path == "/echo?a=1&b=2"
    assert post.body == b'{"k":"v"}' and post.headers["content-type"] == "application/json"
    assert "cookie" not in get.headers  # a shared client must never replay cookies
    assert post.client_port == get.client_port  # one pooled connection


async def test_accepts_httpx_url_and_mock_transport() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=request.headers["host"])

    client = GuardedHTTPClient(
        resolver=StubResolver({"mock.test": ["93.184.215.14"]}),
        transport=httpx.MockTransport(handler),
    )
    async with client:
        response = await client.request("GET", httpx.URL("http://mock.test/x"))
    assert response.text == "mock.test"
