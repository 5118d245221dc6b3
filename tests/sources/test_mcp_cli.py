"""``blockpilot sources add mcp``: mcp-server-time (PyPI) over streamable HTTP and by
``--command`` over stdio, from the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from blockpilot.cli.app import app
from blockpilot.cli.errors import EXIT_USAGE
from tests import bp_database

from .mcp_servers import serve_in_thread
from .test_mcp_transports import TIME_COMMAND, server_pids
from .test_sources_cli import error_line


@pytest.fixture
def cli(settings_factory: Any, home: Path) -> Any:
    settings = settings_factory()  # on PostgreSQL this also points the CLI at the test database
    env = {
        "BLOCKPILOT_HOME": str(home),
        "BLOCKPILOT_ENCRYPTION_KEYS": settings.encryption_keys[0].get_secret_value(),
        "COLUMNS": "200",
    }
    if bp_database.CURRENT_URL:
        env["BLOCKPILOT_DATABASE_URL"] = bp_database.CURRENT_URL
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env)

    return invoke


def test_add_show_refresh_run_remove(cli: Any) -> None:
    from mcp_server_time.server import create_server

    with serve_in_thread(create_server("UTC").streamable_http_app()) as base:
        url = base + "/mcp"
        bad = cli("sources", "add", "mcp", "time", url, "--header", "no colon")
        assert bad.exit_code == EXIT_USAGE and "--header" in error_line(bad)
        added = cli("sources", "add", "mcp", "time", url, "--include-tool", "get_current_time")
        assert added.exit_code == 0, added.stderr
        assert json.loads(added.stdout) == {
            "name": "time",
            "kind": "mcp",
            "blocks": 1,
            "skipped": [],
        }
        shown = cli("sources", "show", "time", "--json")
        [op] = json.loads(shown.stdout)["operations"]
        assert (op["name"], op["effect"]) == ("time_get_current_time", "read")
        refreshed = cli("sources", "refresh", "time")
        assert refreshed.exit_code == 0, refreshed.stderr
        assert json.loads(refreshed.stdout)["blocks"] == 1
        assert cli("users", "create", "alice").exit_code == 0
        ran = cli(
            "run",
            "time_get_current_time",
            "-u",
            "alice",
            "--input",
            '{"timezone": "Asia/Tokyo"}',
            "--json",
        )
        assert ran.exit_code == 0, ran.stdout + ran.stderr
        assert "Asia/Tokyo" in ran.stdout
    assert cli("sources", "remove", "time").exit_code == 0


def test_add_and_run_a_command_server(cli: Any) -> None:
    """``--command``: mcp-server-time over stdio; the CLI's Pilot.close ends the process."""
    refused = cli("sources", "add", "mcp", "clock", "--command", TIME_COMMAND, "--auth", "bearer")
    assert refused.exit_code == EXIT_USAGE and "per-user secret" in error_line(refused)
    neither = cli("sources", "add", "mcp", "clock")
    assert neither.exit_code == EXIT_USAGE and "--command" in error_line(neither)
    added = cli("sources", "add", "mcp", "clock", "--command", TIME_COMMAND, "--env", "TZ=UTC")
    assert added.exit_code == 0, added.stderr
    assert json.loads(added.stdout) == {"name": "clock", "kind": "mcp", "blocks": 2, "skipped": []}
    shown = json.loads(cli("sources", "show", "clock", "--json").stdout)
    assert (shown["transport"], shown["env"]) == ("stdio", ["TZ"])
    assert cli("users", "create", "alice").exit_code == 0
    ran = cli(
        "run", "clock_get_current_time", "-u", "alice", "--input", '{"timezone": "Asia/Tokyo"}',
        "--json",
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stdout + ran.stderr
    assert "Asia/Tokyo" in ran.stdout
    assert server_pids("mcp_server_time") == []
