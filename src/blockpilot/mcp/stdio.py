"""MCP over stdio for one local user: ``blockpilot mcp --user USER``.

Stdout carries the protocol and nothing else; logs go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

import anyio
from mcp.server import Server
from mcp.server.stdio import stdio_server
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.message import SessionMessage
from mcp_types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import ValidationError

from blockpilot.errors import BlockpilotError
from blockpilot.mcp.server import build_mcp_server
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings

logger = logging.getLogger(__name__)


async def serve_stdio(pilot: Pilot, user: str) -> None:
    """Serve MCP on this process's stdin/stdout as *user* (an id or a name) until EOF.

    Raises:
        UserNotFoundError: No such user.
    """
    found = await pilot.users.get(user)
    server = build_mcp_server(pilot, found.id)
    async with stdio_server() as (read_stream, write_stream):
        await serve_streams(server, read_stream, write_stream)


async def serve_streams(
    server: Server[Any],
    read_stream: ReadStream[SessionMessage | Exception],
    write_stream: WriteStream[SessionMessage],
) -> None:
    """Run *server* on a stream pair, answering lines that are not JSON-RPC messages.

    The SDK's stdio transport hands undecodable lines to the server as exceptions, which it
    drops; JSON-RPC 2.0 wants an error response with ``id: null`` (-32700 for text that is
    not JSON, -32600 for JSON that is not a valid message), so we answer them here.
    """
    relay_send, relay_receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)

    async def relay() -> None:
        async with relay_send, read_stream:
            async for item in read_stream:
                if isinstance(item, Exception):
                    await _answer_malformed(write_stream, item)
                else:
                    await relay_send.send(item)

    async with anyio.create_task_group() as tg:
        tg.start_soon(relay)
        await server.run(relay_receive, write_stream, server.create_initialization_options())
        tg.cancel_scope.cancel()


async def _answer_malformed(write_stream: WriteStream[SessionMessage], exc: Exception) -> None:
    not_json = isinstance(exc, ValidationError) and any(
        e.get("type") == "json_invalid" for e in exc.errors()
    )
    error = (
        ErrorData(code=PARSE_ERROR, message="Parse error: the line is not JSON")
        if not_json
        else ErrorData(code=INVALID_REQUEST, message="Invalid Request: not a JSON-RPC 2.0 message")
    )
    with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
        await write_stream.send(SessionMessage(JSONRPCError(jsonrpc="2.0", id=None, error=error)))


async def run_stdio(user: str, *, settings: Settings | None = None) -> None:
    """Open the Pilot (settings from the environment), serve *user* over stdio, close it.

    This is what ``blockpilot mcp --user USER`` runs.
    """
    pilot = await Pilot.open(settings)
    try:
        await serve_stdio(pilot, user)
    finally:
        await pilot.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m blockpilot.mcp --user USER``: errors are one line on stderr, exit 1."""
    parser = argparse.ArgumentParser(
        prog="python -m blockpilot.mcp", description="Serve blockpilot's MCP tools over stdio."
    )
    parser.add_argument("--user", required=True, help="the user to act as (id or name)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        anyio.run(run_stdio, args.user)
    except BlockpilotError as exc:
        sys.stderr.write(f"Error: {exc.message}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
