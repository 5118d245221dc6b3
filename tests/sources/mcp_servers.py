"""MCP servers for the tests: a local one on the ``mcp`` SDK that requires a bearer token and
records what reaches it, and the real third-party servers (mcp-server-time, server-everything).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from mcp.server.mcpserver import Image, MCPServer
from mcp_types import ToolAnnotations

from blockpilot.testing import serve_asgi

# A 1x1 PNG: the image content item of the ``snapshot`` tool.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@dataclass
class Seen:
    """What reached the upstream: every JSON-RPC request with the user its token belongs to."""

    calls: list[tuple[str, str]] = field(default_factory=list)  # (user, method)
    refused: int = 0
    server: Any = None  # the MCPServer (a test may remove a tool)

    def initializes(self, user: str) -> int:
        return sum(1 for who, method in self.calls if who == user and method == "initialize")

    def users(self) -> set[str]:
        return {who for who, _ in self.calls}


def notes_server(seen: Seen) -> MCPServer:
    server = MCPServer("notes")

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def whoami() -> dict[str, str]:
        """Who the server thinks is calling (the owner of the bearer token)."""
        return {"user": _CURRENT.get("user", "?")}

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool(annotations=ToolAnnotations(destructiveHint=True))
    def delete_note(note_id: str) -> str:
        """Delete a note for good."""
        return f"deleted {note_id}"

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True), structured_output=False)
    def snapshot() -> Image:
        """A tiny PNG image of the notes board."""
        return Image(data=PNG, format="png")

    return server


_CURRENT: dict[str, str] = {}


def bearer_guard(app: Any, tokens: dict[str, str], seen: Seen) -> Any:
    """ASGI wrapper: 401 without one of *tokens*; records (user, JSON-RPC method) per POST."""

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"").decode()
        user = tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
        if user is None:
            seen.refused += 1
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [(b"www-authenticate", b"Bearer"), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["method"] == "POST":
            try:
                method = json.loads(body).get("method", "?")
            except (ValueError, AttributeError):
                method = "?"
            seen.calls.append((user, method))
        _CURRENT["user"] = user
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, replay, send)

    return guarded


@asynccontextmanager
async def bearer_mcp_server(tokens: dict[str, str]) -> AsyncIterator[tuple[str, Seen]]:
    """The notes server over streamable HTTP, requiring one of *tokens*; yields (URL, seen)."""
    seen = Seen()
    server = seen.server = notes_server(seen)
    app = server.streamable_http_app()
    async with serve_asgi(bearer_guard(app, tokens, seen)) as base:
        yield base + "/mcp", seen


@asynccontextmanager
async def time_mcp_server() -> AsyncIterator[str]:
    """mcp-server-time (PyPI) served over streamable HTTP by the SDK; yields its URL."""
    from mcp_server_time.server import create_server

    app = create_server("UTC").streamable_http_app()
    async with serve_asgi(app) as base:
        yield base + "/mcp"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


EVERYTHING = "@modelcontextprotocol/server-everything"


def everything_command(mode: str = "streamableHttp") -> list[str] | None:
    """How to start server-everything in *mode* (streamableHttp, sse, stdio): an installed
    bin, else npx (offline cache); None if Node is not here."""
    local = shutil.which("mcp-server-everything")
    if local:
        return [local, mode]
    npx = shutil.which("npx")
    if npx is None:
        return None
    return [npx, "-y", EVERYTHING, mode]


@asynccontextmanager
async def everything_server(mode: str = "streamableHttp") -> AsyncIterator[str]:
    """server-everything (npm) over HTTP on a free port; yields its URL (``/mcp`` for
    streamable HTTP, ``/sse`` for the older HTTP+SSE)."""
    command = everything_command(mode)
    assert command is not None
    port = _free_port()
    proc = subprocess.Popen(
        command,
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):  # npx may have to fetch the package the first time
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(command)} exited with {proc.returncode}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.2)
        yield f"http://127.0.0.1:{port}/" + ("sse" if mode == "sse" else "mcp")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve *app* with uvicorn in a thread (for synchronous tests such as the CLI's)."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
