"""The documented stdio config for Claude Desktop works as written (issue 11 #17).

Claude Desktop spawns ``command`` with ``args`` and ``env`` from its JSON config, without a
shell and without the venv on ``PATH`` (``"command": "blockpilot"`` failed with ``spawn
blockpilot ENOENT``). The test takes the snippet from docs/service.md, puts in the path the
README tells people to print (``realpath .venv/bin/blockpilot``), spawns it the same way
and speaks MCP over its stdio: ``initialize``, then ``tools/list``.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import anyio

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 90  # two cold starts of the CLI on a busy 2-core machine


def _stdio_section() -> str:
    readme = (REPO / "docs" / "service.md").read_text(encoding="utf-8")
    start = readme.index("**MCP over stdio**")
    return readme[start : readme.index("**MCP over streamable HTTP**", start)]


def _line(message: dict[str, Any]) -> bytes:
    return (json.dumps(message) + "\n").encode()


async def test_the_readme_claude_desktop_config_starts_and_lists_tools(tmp_path: Path) -> None:
    section = _stdio_section()
    snippet = re.search(r"```json\n(.*?)```", section, re.S)
    assert snippet, "the stdio section has a JSON config"
    server = json.loads(snippet.group(1))["mcpServers"]["blockpilot"]
    # The path to put in, printed the way the README says.
    how = re.search(r"`(realpath [^`]+)`", section)
    assert how, "the README says how to print the absolute path"
    printed = subprocess.run(
        shlex.split(how.group(1)), cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Path(printed).is_absolute() and Path(printed).is_file(), printed
    placeholder = server["command"]
    assert Path(placeholder).is_absolute() and placeholder.endswith("/.venv/bin/blockpilot")
    command = printed  # what the person pastes over the placeholder
    # Claude Desktop's environment: the config's env on top of a minimal one, no venv on PATH.
    home = tmp_path / "blockpilot-home"
    env = {**server["env"], "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)}
    assert set(server["env"]) == {"BLOCKPILOT_HOME"}
    env["BLOCKPILOT_HOME"] = str(home)  # this test's data folder instead of /home/me/...
    assert str(Path(printed).parent) not in env["PATH"].split(":")
    user = server["args"][server["args"].index("--user") + 1]
    created = subprocess.run(
        [command, "users", "create", user], env=env, cwd=tmp_path, capture_output=True, timeout=60
    )
    assert created.returncode == 0, created.stderr

    requests = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "claude-ai", "version": "0.1.0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    with anyio.fail_after(TIMEOUT):
        # A list of arguments and no shell, as Node's child_process.spawn does it.
        async with await anyio.open_process(
            [command, *server["args"]], env=env, cwd=tmp_path
        ) as process:
            assert process.stdin is not None and process.stdout is not None
            await process.stdin.send(b"".join(_line(r) for r in requests))
            received = b""
            while received.count(b"\n") < 2:
                received += await process.stdout.receive()
            await process.stdin.aclose()
            await process.wait()
    replies = {r["id"]: r for r in map(json.loads, received.decode().splitlines())}
    assert replies[1]["result"]["serverInfo"]["name"] == "blockpilot"
    names = {tool["name"] for tool in replies[2]["result"]["tools"]}
    assert {"find_block", "run_block"} <= names
    assert process.returncode == 0
