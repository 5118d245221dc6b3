"""``blockpilot sources``: add, list, show, refresh and remove, in-process with CliRunner."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from blockpilot.cli.app import app
from blockpilot.cli.errors import EXIT_CONFLICT, EXIT_NOT_FOUND, EXIT_USAGE
from blockpilot.pilot import Pilot
from blockpilot.sources.base import source_block_id
from blockpilot.testing import LocalHTTPServer, Response
from tests import bp_database

DATA = Path(__file__).parents[1] / "data" / "openapi"
PETSTORE = DATA / "petstore3.yaml"


@pytest.fixture
def spec_server() -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer() as server:
        yield server


@pytest.fixture
def cli(settings_factory: Any, home: Path, spec_server: LocalHTTPServer) -> Any:
    settings = settings_factory()  # on PostgreSQL this also points the CLI at the test database
    env = {
        "BLOCKPILOT_HOME": str(home),
        "BLOCKPILOT_ENCRYPTION_KEYS": settings.encryption_keys[0].get_secret_value(),
        "BLOCKPILOT_HTTP_ALLOWED_HOSTS": f"127.0.0.1:{spec_server.port}",
        "COLUMNS": "200",
    }
    if bp_database.CURRENT_URL:
        env["BLOCKPILOT_DATABASE_URL"] = bp_database.CURRENT_URL
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env)

    invoke.settings = settings  # type: ignore[attr-defined]
    return invoke


def error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_add_list_show_remove(cli: Any) -> None:
    added = cli("sources", "add", "openapi", "petstore", str(PETSTORE))
    assert added.exit_code == 0, added.stderr
    assert json.loads(added.stdout) == {
        "name": "petstore",
        "kind": "openapi",
        "blocks": 18,
        "skipped": [
            {
                "operation": "uploadFile",
                "reason": "request body media type(s) not supported: application/octet-stream",
            }
        ],
    }
    again = cli("sources", "add", "openapi", "petstore", str(PETSTORE))
    assert again.exit_code == EXIT_CONFLICT
    assert "already exists" in error_line(again)

    listed = cli("sources", "list", "--json")
    [source] = json.loads(listed.stdout)
    assert source["name"] == "petstore" and source["blocks"] == 18
    assert source["base_url"] == "https://petstore3.swagger.io/api/v3"
    table = cli("sources", "list")
    assert "petstore" in table.stdout and "openapi" in table.stdout

    shown = cli("sources", "show", "petstore")
    assert shown.exit_code == 0, shown.stderr
    assert "petstore_getPetById" in shown.stdout and "destructive" in shown.stdout
    doc = json.loads(cli("sources", "show", "petstore", "--json").stdout)
    by_name = {op["name"]: op for op in doc["operations"]}
    assert by_name["petstore_getPetById"]["credentials"] == ["api_key", "oauth2"]

    blocks = cli("blocks", "list", "--json")
    names = {b["name"] for b in json.loads(blocks.stdout)}
    assert "petstore_findPetsByStatus" in names

    removed = cli("sources", "remove", "petstore")
    assert removed.exit_code == 0
    gone = cli("sources", "show", "petstore")
    assert gone.exit_code == EXIT_NOT_FOUND
    assert "not found" in error_line(gone)


def test_bad_input_is_one_error_line(cli: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"openapi": "3.0.3", "paths": {"/x": {"get": 5}}}))
    for args, text in (
        (
            ("openapi", "bad", str(broken), "--base-url", "https://api.example.com"),
            "$.paths./x.get",
        ),
        (("openapi", "Bad-Name", str(PETSTORE)), "Invalid source name"),
        (("graphql", "gql", str(PETSTORE)), "Unknown source kind"),
        (("openapi", "nofile", str(tmp_path / "missing.yaml")), "Could not read"),
        (("openapi", "rel", str(PETSTORE), "--base-url", "ftp://x"), "http(s) URL"),
    ):
        result = cli("sources", "add", *args)
        assert result.exit_code == EXIT_USAGE, (args, result.stderr)
        assert text in error_line(result)
    assert json.loads(cli("sources", "list", "--json").stdout) == []


def test_refresh_from_a_url_keeps_ids_and_reaches_other_processes(
    cli: Any, spec_server: LocalHTTPServer
) -> None:
    text = PETSTORE.read_text(encoding="utf-8")
    spec_server.add_route("GET", "/openapi.yaml", Response.text(text))
    # Another process's view of the same database, on its own event loop.
    loop = asyncio.new_event_loop()
    other = loop.run_until_complete(Pilot.open(cli.settings))
    try:
        added = cli("sources", "add", "openapi", "petstore", spec_server.url("/openapi.yaml"))
        assert added.exit_code == 0, added.stderr
        loop.run_until_complete(other.sources.sync(force=True))
        block = other.registry.get(source_block_id("petstore", "getPetById"))
        assert block is not None
        assert "Returns a single pet" in block.description

        changed = text.replace("Returns a single pet.", "Returns one pet, refreshed.")
        spec_server.reset()
        spec_server.add_route("GET", "/openapi.yaml", Response.text(changed))
        refreshed = cli("sources", "refresh", "petstore")
        assert refreshed.exit_code == 0, refreshed.stderr
        assert json.loads(refreshed.stdout)["blocks"] == 18

        loop.run_until_complete(other.sources.sync(force=True))
        same = other.registry.get(source_block_id("petstore", "getPetById"))
        assert same is not None and same is not block
        assert "Returns one pet, refreshed." in same.description
        hits = other.catalog.search("one pet refreshed", limit=3)
        assert hits[0].id == same.id

        cli("sources", "remove", "petstore")
        loop.run_until_complete(other.sources.sync(force=True))
        assert other.registry.get(same.id) is None
    finally:
        loop.run_until_complete(other.close())
        loop.close()
