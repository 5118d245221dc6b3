"""A response's head and body go out in one write; nothing else about the connection changes."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn

from blockpilot.api.response_writes import CoalescingTransport
from blockpilot.api.server import server_config
from blockpilot.testing import serve_asgi

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recorder:
    """The operations a transport was asked for, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def write(self, data: bytes) -> None:
        self.calls.append(("write", bytes(data)))

    def writelines(self, data: list[bytes]) -> None:
        self.calls.append(("writelines", list(data)))

    def write_eof(self) -> None:
        self.calls.append(("write_eof", None))

    def close(self) -> None:
        self.calls.append(("close", None))

    def abort(self) -> None:
        self.calls.append(("abort", None))

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def _wrapped() -> tuple[CoalescingTransport, Recorder]:
    recorder = Recorder()
    return CoalescingTransport(recorder, asyncio.get_running_loop()), recorder  # type: ignore[arg-type]


async def test_a_head_and_the_body_after_it_are_one_write() -> None:
    transport, recorder = _wrapped()
    transport.write(HEAD)
    assert recorder.calls == []
    transport.write(b"{}")
    transport.write(b"")  # h11's end of a content-length body
    assert recorder.calls == [("write", HEAD + b"{}"), ("write", b"")]
    await asyncio.sleep(0)  # the held head's callback finds nothing left to send
    assert recorder.calls == [("write", HEAD + b"{}"), ("write", b"")]


async def test_a_head_alone_goes_out_at_the_loops_next_turn() -> None:
    transport, recorder = _wrapped()
    transport.write(HEAD)
    await asyncio.sleep(0)
    assert recorder.calls == [("write", HEAD)]
    transport.write(b"HTTP/1.1 is not a head without its blank line")
    assert recorder.calls[-1] == ("write", b"HTTP/1.1 is not a head without its blank line")


async def test_everything_that_writes_or_ends_the_connection_sends_a_held_head_first() -> None:
    for operation, argument in (
        ("close", ()),
        ("abort", ()),
        ("write_eof", ()),
        ("writelines", ([b"a", b"b"],)),
    ):
        transport, recorder = _wrapped()
        transport.write(HEAD)
        getattr(transport, operation)(*argument)
        assert recorder.calls[0] == ("write", HEAD)
        assert recorder.calls[1][0] == operation
    transport, _ = _wrapped()
    assert transport.get_extra_info("peername") == "info:peername"


async def _json_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await receive()
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-type", b"application/json"), (b"x-thing", b"1")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"ok": true}'})


async def _exchange(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    answer = await reader.read()  # the server closes (Connection: close)
    writer.close()
    return answer


def _without_date(response: bytes) -> bytes:
    return b"\r\n".join(
        line for line in response.split(b"\r\n") if not line.lower().startswith(b"date:")
    )


async def _plain_uvicorn_exchange(request: bytes) -> bytes:
    """*request* answered by uvicorn's own h11 protocol (no blockpilot protocol)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        _json_app, http="h11", log_config=None, access_log=False, server_header=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(30):
            while not server.started:
                await asyncio.sleep(0.01)
        return await _exchange(f"http://127.0.0.1:{sock.getsockname()[1]}", request)
    finally:
        server.should_exit = True
        await task


async def test_the_served_bytes_are_uvicorns() -> None:
    request = b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    assert server_config(_json_app, host="127.0.0.1", port=1).http != "h11"
    async with serve_asgi(_json_app) as ours:
        coalesced = await _exchange(ours, request)
    uvicorns = await _plain_uvicorn_exchange(request)
    assert coalesced.startswith(b"HTTP/1.1 201 Created\r\n")
    assert _without_date(coalesced) == _without_date(uvicorns)


async def test_a_streamed_head_reaches_the_client_before_the_body_exists() -> None:
    head_read = asyncio.Event()

    async def streaming(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await head_read.wait()  # the body is made only once the client has the head
        await send({"type": "http.response.body", "body": b"late", "more_body": False})

    async with serve_asgi(streaming) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        async with asyncio.timeout(30):  # a held head would never arrive: fail, not hang
            head = await reader.readuntil(b"\r\n\r\n")
        head_read.set()
        rest = await reader.read()
        writer.close()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert rest == b"4\r\nlate\r\n0\r\n\r\n"  # chunked, as uvicorn frames it
