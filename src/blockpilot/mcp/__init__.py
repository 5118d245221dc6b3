"""blockpilot over MCP (the official ``mcp`` SDK, 2.x): stdio for one local user, and
streamable HTTP for the service, both exposing ``find_block`` and ``run_block``.

- :func:`build_mcp_server` — the server for a :class:`~blockpilot.pilot.Pilot` and a user
  resolver (test it in-process with ``mcp.Client(server)``);
- :func:`run_stdio` — ``blockpilot mcp --user USER`` (also ``python -m blockpilot.mcp``);
- :class:`MCPHttpApp` — the ASGI app the HTTP service mounts at ``/mcp``.

This package is named like the SDK; it imports the SDK with absolute imports (``import mcp``
is always the SDK).
"""

from __future__ import annotations

from blockpilot.mcp.http import MCPHttpApp, api_key_authenticator, current_http_user
from blockpilot.mcp.results import tool_result
from blockpilot.mcp.server import UserResolver, build_mcp_server, fixed_user
from blockpilot.mcp.stdio import run_stdio, serve_stdio

__all__ = [
    "MCPHttpApp",
    "UserResolver",
    "api_key_authenticator",
    "build_mcp_server",
    "current_http_user",
    "fixed_user",
    "run_stdio",
    "serve_stdio",
    "tool_result",
]
