"""``python -m blockpilot.mcp --user USER`` as a real subprocess: the SDK's stdio client,
and raw lines on its stdin (malformed ones included)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp_types import INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR

from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.storage.users import User
from tests.mcp.mcp_helpers import CALCULATOR_BLOCK_ID, EMAIL_BLOCK_ID, server_env

TIMEOUT = 60  # a cold start of the CLI (imports every block) on a busy 2-core machine


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    return server_env(settings.home, settings.encryption_keys[0].get_secret_value())


def rpc(request_id: int, method: str, params: Any = None) -> dict[str, Any]:
    message = {"jsonrpc": "2.0", "id": request_id, "method": method}
    return message if params is None else {**message, "params": params}


def command(user: str) -> list[str]:
    return [sys.executable, "-m", "blockpilot.mcp", "--user", user]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_sdk_client_over_stdio(
    pilot: Pilot, alice: User, env: dict[str, str], tmp_path: Path, mode: str
) -> None:
    exe, *args = command("alice")
    params = StdioServerParameters(command=exe, args=args, env=env, cwd=tmp_path)
    with anyio.fail_after(TIMEOUT):
        async with Client(params, mode=mode) as client:
            tools = (await client.list_tools()).tools
            found = await client.call_tool("find_block", {"query": "email"})
            details = await client.call_tool(
                "run_block", {"block_id": CALCULATOR_BLOCK_ID, "input_data": {}}
            )
            setup = await client.call_tool(
                "run_block", {"block_id": EMAIL_BLOCK_ID, "input_data": {}}
            )
            with pytest.raises(MCPError) as unknown:
                await client.call_tool("nope", {})
            ran = await client.call_tool(
                "run_block",
                {
                    "block_id": CALCULATOR_BLOCK_ID,
                    "input_data": {"operation": "multiply", "a": 6, "b": 7},
                },
            )
    assert {t.name: t.input_schema for t in tools} == {
        n: t.parameters for n, t in pilot.tools.items()
    }
    assert found.structured_content["type"] == "block_list"
    assert details.structured_content["type"] == "block_details"
    assert setup.structured_content["type"] == "setup_requirements" and not setup.is_error
    assert unknown.value.error.code == INVALID_PARAMS
    assert ran.structured_content["outputs"]["result"] == [42]
    sessions = {r.structured_content["session_id"] for r in (found, details, setup, ran)}
    assert len(sessions) == 1  # one blockpilot session for the whole connection
    assert await pilot.sessions.get(alice.id, sessions.pop()) is not None


@pytest.mark.slow
async def test_malformed_lines_get_json_rpc_errors_and_the_server_keeps_serving(
    alice: User, env: dict[str, str], tmp_path: Path
) -> None:
    client = {"name": "raw", "version": "0"}
    lines: list[Any] = [
        "this is not json",
        rpc(
            1,
            "initialize",
            {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": client},
        ),
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        [1, 2, 3],
        rpc(2, "tools/call", {"name": 7}),
        rpc(3, "tools/call", {"name": "find_block", "arguments": "email"}),
        rpc(4, "tools/call", {"name": "rm_rf", "arguments": {}}),
        rpc(5, "no/such/method"),
        '{"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {',
        rpc(7, "tools/call", {"name": "find_block", "arguments": {"query": 1}}),
        rpc(8, "tools/call", {"name": "find_block", "arguments": {"query": "email"}}),
    ]
    stdin = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    with anyio.fail_after(TIMEOUT):
        async with await anyio.open_process(command("alice"), env=env, cwd=tmp_path) as process:
            assert process.stdin is not None and process.stdout is not None
            await process.stdin.send(stdin.encode())
            received = b""
            while received.count(b"\n") < 10:
                received += await process.stdout.receive()
            await process.stdin.aclose()
            await process.wait()
    replies = [json.loads(line) for line in received.decode().splitlines()]
    by_id = {r["id"]: r for r in replies if r["id"] is not None}
    anonymous = [r["error"]["code"] for r in replies if r["id"] is None]
    assert sorted(anonymous) == sorted([PARSE_ERROR, INVALID_REQUEST, PARSE_ERROR])
    assert by_id[1]["result"]["serverInfo"]["name"] == "blockpilot"
    assert by_id[2]["error"]["code"] == INVALID_PARAMS
    assert by_id[3]["error"]["code"] == INVALID_PARAMS
    assert by_id[4]["error"]["code"] == INVALID_PARAMS
    assert by_id[5]["error"]["code"] == METHOD_NOT_FOUND
    assert by_id[7]["result"]["isError"] is True  # a wrong argument type: the model can fix it
    assert by_id[8]["result"]["structuredContent"]["type"] == "block_list"
    assert process.returncode == 0


@pytest.mark.slow
def test_unknown_user_is_one_line_on_stderr(
    pilot: Pilot, env: dict[str, str], tmp_path: Path
) -> None:
    done = subprocess.run(
        command("nobody"),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines()[-1].startswith("Error: No user 'nobody'")
