"""MCP over stdio for one local user: ``blockpilot mcp --user USER``.

Stdout carries the protocol and nothing else; logs go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import anyio
from mcp.server.stdio import stdio_server

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
        await server.run(read_stream, write_stream, server.create_initialization_options())


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
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        anyio.run(run_stdio, args.user)
    except BlockpilotError as exc:
        sys.stderr.write(f"Error: {exc.message}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
