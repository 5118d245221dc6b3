"""``blockpilot sources add mcp NAME URL --auth oauth`` from the CLI: discovery stored, the
operator's app kept sealed, and a user without a connection gets the setup requirements."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .mcp_oauth_servers import OAuthUpstream, oauth_mcp_server
from .test_mcp_cli import cli  # noqa: F401 - the fixture
from .test_mcp_oauth import operator_header

SECRET = "ops-cli-secret-canary-9b2d"


@contextmanager
def upstream_in_thread() -> Iterator[OAuthUpstream]:
    """The OAuth MCP server and its authorization server, in a loop of their own."""
    ready: list[OAuthUpstream] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        async with oauth_mcp_server() as up:
            ready.append(up)
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    try:
        for _ in range(1500):
            if ready:
                break
            threading.Event().wait(0.01)
        assert ready, "the OAuth MCP server did not start"
        yield ready[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(20)


def test_add_oauth_source_and_run_needs_a_connection(cli: Any) -> None:  # noqa: F811
    with upstream_in_thread() as up:
        [header] = [f"{k}: {v}" for k, v in operator_header(up).items()]
        added = cli(
            "sources", "add", "mcp", "notes", up.mcp_url, "--auth", "oauth",
            "--client-id", "ops-app", "--client-secret", SECRET, "--scope", "notes:read",
            "--header", header,
        )  # fmt: skip
        assert added.exit_code == 0, added.stderr
        assert json.loads(added.stdout)["blocks"] == 4
        shown = cli("sources", "show", "notes", "--json")
        doc = json.loads(shown.stdout)
        assert doc["auth"] == "oauth" and doc["oauth"]["scopes"] == ["notes:read"]
        assert doc["oauth"]["resource"] == up.mcp_url
        assert SECRET not in shown.stdout + added.stdout
        assert cli("users", "create", "alice").exit_code == 0
        ran = cli("run", "notes_add", "-u", "alice", "--input", '{"a": 1, "b": 2}', "--json")
        assert ran.exit_code != 0
        assert "setup_requirements" in ran.stdout and "notes" in ran.stdout
        assert "alice" not in up.seen.users()
        wrong = cli("sources", "add", "mcp", "other", up.mcp_url, "--client-id", "x")
        assert wrong.exit_code != 0 and "--auth oauth" in wrong.stderr
