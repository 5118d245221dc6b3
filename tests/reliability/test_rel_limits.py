"""Limits of a real ``blockpilot serve`` (docs/security.md#reliability-promises), with its memory
measured from /proc: 100 MB request bodies, huge block outputs, slow, trickling and
endless upstream responses and gzip bombs reached through the HTTP blocks."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest

from blockpilot.credentials.crypto import KeyRing
from tests.net.net_servers import LocalServer, reply, stall, stream
from tests.reliability.rel_helpers import Serve, base_env, cli

MB = 1_000_000
MiB = 1024 * 1024
WEB_REQUEST_ID = "6595ae1f-b924-42cb-9a41-551a0611c4b4"
RESPONSE_CAP = 10 * MiB  # the guarded client's default body cap
BLOCK_TIMEOUT = 3


def _endless(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    chunk = b"e" * 65536
    try:
        while True:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except OSError:
        h.close_connection = True


def _gzip_bomb(decoded: int) -> bytes:
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * MiB
    parts = [squeeze.compress(zeros) for _ in range(decoded // MiB)]
    return b"".join(parts) + squeeze.flush()


@pytest.fixture(scope="module")
def upstream() -> Iterator[LocalServer]:
    server = LocalServer()
    bomb = _gzip_bomb(1024 * MiB)  # 1 GiB of zeros in about 1 MB
    server.route("/endless", _endless)
    server.route(
        "/bomb", reply(200, bomb, {"Content-Encoding": "gzip", "Content-Type": "text/plain"})
    )
    server.route("/trickle", stream(10 * MiB, chunk=1, interval=0.05))
    server.route("/stall", stall(60))
    server.route(
        "/nine-mb",
        reply(200, json.dumps(["x" * 1000] * 9000).encode(), {"Content-Type": "application/json"}),
    )
    server.route("/declared-huge", reply(200, b"", {"Content-Length": str(5 * 1024 * MiB)}))
    yield server
    server.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Serve, str]]:
    home = tmp_path_factory.mktemp("limits") / "home"
    env = base_env(
        home,
        KeyRing.generate_key(),
        BLOCKPILOT_HTTP_ALLOWED_HOSTS="127.0.0.1",
        BLOCKPILOT_BLOCK_TIMEOUT_SECONDS=str(BLOCK_TIMEOUT),
        BLOCKPILOT_RATE_LIMIT_PER_MINUTE="0",
        BLOCKPILOT_MAX_CONCURRENT_RUNS_PER_USER="0",
    )
    key = json.loads(cli(env, "users", "create", "mallory").stdout)["api_key"]
    server = Serve(env, home.parent / "serve.log", workers=1)  # the RSS of the whole server
    server.wait_ready()
    # warm up every route once, so the baseline includes what any first request loads
    headers = {"Authorization": f"Bearer {key}"}
    httpx.post(
        f"{server.base_url}/api/v1/tools/find_block",
        json={"query": "http"},
        headers=headers,
        timeout=30,
    )
    httpx.put(
        f"{server.base_url}/api/v1/workspace/files/warm.txt",
        content=b"w",
        headers=headers,
        timeout=30,
    )
    httpx.get(f"{server.base_url}/api/v1/workspace/files/warm.txt", headers=headers, timeout=30)
    try:
        yield server, key
    finally:
        server.kill()
        assert "Traceback" not in server.stderr()


def _raw_upload(base_url: str, request_head: str, total: int, *, chunked: bool) -> tuple[int, int]:
    """Send a huge body by hand; stop as soon as the server answers.

    Returns (status, bytes sent)."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(request_head.encode())
    sent = 0
    chunk = b"{" + b" " * (MiB - 1)
    status = 0
    sock.setblocking(False)
    try:
        while sent < total:
            try:
                data = sock.recv(65536)
                if data:
                    status = int(data.split(b" ", 2)[1])
                    break
            except BlockingIOError:
                pass
            payload = b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
            try:
                sock.setblocking(True)
                sock.settimeout(5)
                sock.sendall(payload)
                sock.setblocking(False)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            sent += len(chunk)
        if not status:
            sock.setblocking(True)
            sock.settimeout(10)
            data = sock.recv(65536)
            status = int(data.split(b" ", 2)[1]) if data else 0
    finally:
        sock.close()
    return status, sent


@pytest.mark.slow
def test_100_mb_bodies_are_refused_early_or_streamed_in_bounded_memory(
    served: tuple[Serve, str],
) -> None:
    server, key = served
    baseline = server.peak_rss_bytes()
    auth = f"Authorization: Bearer {key}\r\n"
    for path in ("/api/v1/tools/run_block", "/api/v1/credentials", "/mcp"):
        # declared: refused before a byte of the body is read
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\n"
            f"Accept: application/json, text/event-stream\r\nContent-Length: {100 * MB}\r\n\r\n"
        )
        status, sent = _raw_upload(server.base_url, head, 100 * MB, chunked=False)
        assert status == 413, (path, status)
        assert sent <= 8 * MiB, (path, sent)
        # chunked (no length): counted while streaming and cut off at the 2 MiB limit
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\n"
            f"Accept: application/json, text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        status, sent = _raw_upload(server.base_url, head, 100 * MB, chunked=True)
        assert status == 413, (path, status)
        assert sent <= 16 * MiB, (path, sent)
    # a workspace upload over the file limit (100 MiB): refused before it is read
    head = (
        "PUT /api/v1/workspace/files/too-big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"{auth}Content-Length: {200 * MiB}\r\n\r\n"
    )
    status, sent = _raw_upload(server.base_url, head, 200 * MiB, chunked=False)
    assert status == 413 and sent <= 8 * MiB
    # a 100 MB upload within the limit is streamed to disk and back, never held in memory
    headers = {"Authorization": f"Bearer {key}"}

    def body() -> Iterator[bytes]:
        for _ in range(100):
            yield b"b" * MB

    put = httpx.put(
        f"{server.base_url}/api/v1/workspace/files/hundred.bin",
        content=body(),
        headers=headers,
        timeout=120,
    )
    assert put.status_code == 201, put.text
    assert put.json()["size_bytes"] == 100 * MB
    received = 0
    with httpx.stream(
        "GET", f"{server.base_url}/api/v1/workspace/files/hundred.bin", headers=headers, timeout=120
    ) as got:
        assert got.status_code == 200
        for piece in got.iter_bytes():
            received += len(piece)
    assert received == 100 * MB
    growth = server.peak_rss_bytes() - baseline
    print(
        f"peak RSS growth with 100 MB bodies: {growth / MiB:.1f} MiB "
        f"(baseline {baseline / MiB:.0f} MiB)"
    )
    assert growth < 60 * MiB, f"the server grew by {growth / MiB:.0f} MiB handling 100 MB bodies"


async def _run(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/tools/run_block",
        json={"block_id": WEB_REQUEST_ID, "input_data": {"url": url, "method": "GET"}},
    )
    assert response.status_code == 200, response.text
    return {"json": response.json(), "bytes": len(response.content)}


@pytest.mark.slow
async def test_abusive_upstreams_are_capped_with_clear_errors_in_bounded_memory(
    served: tuple[Serve, str], upstream: LocalServer
) -> None:
    server, key = served
    baseline = server.peak_rss_bytes()
    cases = {
        "/endless": ("response_too_large", f"larger than the limit of {RESPONSE_CAP} bytes"),
        "/bomb": ("response_too_large", f"larger than the limit of {RESPONSE_CAP} bytes"),
        "/declared-huge": ("response_too_large", f"larger than the limit of {RESPONSE_CAP} bytes"),
        "/trickle": ("block_timeout", f"timed out after {BLOCK_TIMEOUT}s"),
        "/stall": ("block_timeout", f"timed out after {BLOCK_TIMEOUT}s"),
    }
    async with httpx.AsyncClient(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        started = time.monotonic()
        paths = [path for path in cases for _ in range(3)]
        results = await asyncio.gather(*(_run(client, upstream.url(path)) for path in paths))
        elapsed = time.monotonic() - started
        for path, result in zip(paths, results, strict=True):
            data = result["json"]
            code, words = cases[path]
            assert data["type"] == "error", (path, data)
            assert code in (data["code"], (data.get("details") or {}).get("cause")), (path, data)
            assert words in data["message"], (path, data["message"])
            assert result["bytes"] < 4096
        assert elapsed < BLOCK_TIMEOUT + 10
        # A big but allowed body: the block output is cut to the output limit; the full
        # value is kept in the workspace.
        big = await _run(client, upstream.url("/nine-mb"))
        data = big["json"]
        assert data["type"] == "block_output" and data["output_truncated"] is True
        assert big["bytes"] < 200_000
        assert "saved as workspace://" in json.dumps(data["outputs"])
        executions = (await client.get("/api/v1/executions", params={"limit": 50})).json()[
            "executions"
        ]
        assert all(e["status"] in ("failed", "timed_out", "completed") for e in executions)
    growth = server.peak_rss_bytes() - baseline
    print(
        f"peak RSS growth with 15 abusive upstream runs: {growth / MiB:.1f} MiB "
        f"(baseline {baseline / MiB:.0f} MiB)"
    )
    assert growth < 250 * MiB, f"the server grew by {growth / MiB:.0f} MiB"
