"""Forwarding an MCP request to the worker that holds its session, over that worker's Unix
socket (``blockpilot.mcp.worker_sessions``), against a real uvicorn server on the socket.

The owner here is a small ASGI app that echoes what it received and answers in several
chunks (as an SSE stream does); the whole service across two real workers is in
``tests/api/test_serve_workers.py``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import uvicorn
from starlette.types import Message, Receive, Scope, Send

from blockpilot.mcp.worker_sessions import FORWARDED, WorkerSessions, forwarded_requests_app
from blockpilot.workers import Worker

CANARY_KEY = "bp_canary_forwarding_4f2a"


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with what it got (method, target, headers, body, forwarded mark) in chunks."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    seen = {
        "method": scope["method"],
        "path": scope["path"],
        "query": scope["query_string"].decode(),
        "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
        "body": body.decode(),
        "forwarded": scope.get(FORWARDED, False),
    }
    headers = [(b"content-type", b"text/event-stream"), (b"mcp-session-id", b"abc")]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    for part in (b"data: one\n\n", b"data: " + json.dumps(seen).encode() + b"\n\n"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


@asynccontextmanager
async def owner_server(worker: Worker) -> AsyncIterator[uvicorn.Server]:
    config = uvicorn.Config(forwarded_requests_app(echo), lifespan="off", log_config=None)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    sock = worker.listen()
    await server.startup(sockets=[sock])
    try:
        yield server
    finally:
        await server.shutdown(sockets=[sock])


class Call:
    """One request as the forwarding worker's ASGI app sees it, and what it sends back."""

    def __init__(self, method: str = "POST", body: bytes = b"", **scope: Any) -> None:
        self.scope: Scope = {
            "type": "http",
            "method": method,
            "path": "/mcp",
            "raw_path": b"/mcp",
            "query_string": b"",
            "headers": [
                (b"host", b"127.0.0.1:8000"),
                (b"authorization", f"Bearer {CANARY_KEY}".encode()),
                (b"mcp-session-id", b"0123456789ab.abc"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"keep-alive"),
            ],
            **scope,
        }
        self.body = body
        self.sent: list[Message] = []
        self.done = anyio.Event()
        self._given = False

    async def receive(self) -> Message:
        if not self._given:
            self._given = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.done.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self.done.set()

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        start = self.sent[0]
        headers = {k.decode(): v.decode() for k, v in start["headers"]}
        return start["status"], headers, b"".join(m.get("body", b"") for m in self.sent[1:])


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[Worker, Worker]]:
    home = tmp_path / "home"
    owner, forwarder = Worker.start(home), Worker.start(home)
    yield owner, forwarder
    forwarder.close()
    owner.close()


async def test_a_request_reaches_the_owner_as_it_came_and_its_stream_comes_back(
    workers: tuple[Worker, Worker],
) -> None:
    owner, forwarder = workers
    sessions = WorkerSessions(forwarder)
    async with owner_server(owner):
        for _ in range(3):  # over one kept-alive connection
            call = Call(body=b'{"jsonrpc": "2.0"}', query_string=b"x=1")
            assert await sessions.forward(owner.id, call.scope, call.receive, call.send) is None
            status, headers, body = call.answer()
            assert status == 201 and headers["content-type"] == "text/event-stream"
            assert "transfer-encoding" not in headers  # the forwarding server frames it anew
            assert [m.get("more_body") for m in call.sent[1:]][-1] is False
            first, second = body.split(b"\n\n")[:2]
            assert first == b"data: one"
            seen = json.loads(second.removeprefix(b"data: "))
            assert seen["method"] == "POST" and seen["query"] == "x=1"
            assert seen["body"] == '{"jsonrpc": "2.0"}' and seen["forwarded"] is True
            names = [name for name, _ in seen["headers"]]
            assert ["host", "127.0.0.1:8000"] in seen["headers"]  # the owner checks Host
            assert ["authorization", f"Bearer {CANARY_KEY}"] in seen["headers"]  # and the key
            assert ["mcp-session-id", "0123456789ab.abc"] in seen["headers"]
            assert "connection" not in names and names.count("content-length") == 1
            assert not {"user-agent", "accept-encoding"} & set(names)  # nothing added
        assert len(sessions._idle[owner.id]) == 1
        await sessions.aclose()


async def test_a_kept_alive_connection_the_owner_closed_is_replaced(
    workers: tuple[Worker, Worker],
) -> None:
    owner, forwarder = workers
    sessions = WorkerSessions(forwarder)
    async with owner_server(owner):
        call = Call(method="DELETE")
        await sessions.forward(owner.id, call.scope, call.receive, call.send)
        assert call.answer()[0] == 201
    async with owner_server(owner):  # restarted: the pooled connection is dead
        call = Call(method="GET")
        assert await sessions.forward(owner.id, call.scope, call.receive, call.send) is None
        status, _, body = call.answer()
        assert status == 201 and b'"method": "GET"' in body
    await sessions.aclose()


async def test_a_gone_owner_hands_the_request_back_with_its_body(
    workers: tuple[Worker, Worker], tmp_path: Path
) -> None:
    owner, forwarder = workers
    sessions = WorkerSessions(forwarder)
    async with owner_server(owner):
        pass
    owner.close()  # stopped: its lock is released and its socket gone
    call = Call(body=b'{"id": 7}')
    replay = await sessions.forward(owner.id, call.scope, call.receive, call.send)
    assert replay is not None and call.sent == []
    assert await replay() == {"type": "http.request", "body": b'{"id": 7}', "more_body": False}


async def test_an_owner_alive_but_not_answering_is_a_503(
    workers: tuple[Worker, Worker],
) -> None:
    owner, forwarder = workers  # owner holds its lock but serves nothing on its socket
    listening = owner.listen()
    listening.close()  # the socket file stays; connecting is refused
    call = Call()
    assert (
        await WorkerSessions(forwarder).forward(owner.id, call.scope, call.receive, call.send)
        is None
    )
    status, headers, body = call.answer()
    assert status == 503 and headers["retry-after"] == "1"
    assert json.loads(body)["error"]["code"] == "unavailable"
    assert CANARY_KEY not in body.decode()
