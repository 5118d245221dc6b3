"""``/mcp`` refuses foreign ``Origin`` and ``Host`` headers (issue 11 #15; docs/mcp.md).

A web page must not drive the MCP endpoint: neither by a cross-site request (its Origin)
nor by DNS rebinding (its own name resolving to this server: Host and Origin both carry
it, as in the official conformance suite's dns-rebinding scenario). Raw HTTP over a real
socket to the whole service (``create_app``), with Host and Origin set by hand.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from blockpilot.api import create_app
from blockpilot.pilot import Pilot
from blockpilot.testing import serve_asgi
from tests.security.sec_helpers import CANARIES

MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
EVIL = "evil.example.com"


def _initialize(request_id: int = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "origin-test", "version": "0"},
        },
    }


@asynccontextmanager
async def _service(pilot: Pilot) -> AsyncIterator[tuple[str, int]]:
    async with serve_asgi(create_app(pilot), timeout=20) as base:
        yield base, int(urlsplit(base).port or 0)


async def _post(base: str, key: str | None, headers: dict[str, str], body: Any) -> httpx.Response:
    sent = {**MCP_HEADERS, **headers}
    if key:
        sent["Authorization"] = f"Bearer {key}"
    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.post(f"{base}/mcp", content=json.dumps(body), headers=sent)
    CANARIES.saw("mcp origin response", response.text)
    return response


def _assert_refused(response: httpx.Response, header: str) -> None:
    assert response.status_code == 403, response.text
    assert "mcp-session-id" not in response.headers
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None
    assert body["error"]["data"]["code"] == "origin_not_allowed"
    assert body["error"]["data"]["details"] == {"header": header}
    assert header in body["error"]["message"]


@pytest.fixture
async def world(open_pilot: Callable[..., Any]) -> dict[str, Any]:
    pilot = await open_pilot(
        mcp_allowed_origins=("https://app.example.com",), mcp_allowed_hosts=("mcp.example.com",)
    )
    alice, alice_key = await pilot.users.create("alice")
    _, bob_key = await pilot.users.create("bob")
    canary = CANARIES.new("hdr")
    await pilot.add_credentials(
        alice.id,
        {"provider": "http", "type": "host_scoped", "host": EVIL, "headers": {"X-Key": canary}},
    )
    return {"pilot": pilot, "alice": alice, "alice_key": alice_key, "bob_key": bob_key}


async def test_foreign_origin_and_dns_rebinding_are_refused_before_anything_runs(
    world: dict[str, Any],
) -> None:
    pilot, key = world["pilot"], world["alice_key"]
    async with _service(pilot) as (base, port):
        local = f"127.0.0.1:{port}"
        cross_site = await _post(base, key, {"Origin": f"http://{EVIL}"}, _initialize())
        # DNS rebinding: the attacker's name resolves to us; Host and Origin both carry it.
        rebinding = await _post(
            base, key, {"Host": f"{EVIL}:{port}", "Origin": f"http://{EVIL}:{port}"}, _initialize()
        )
        rebinding_no_origin = await _post(base, key, {"Host": f"{EVIL}:{port}"}, _initialize())
        sandboxed = await _post(base, key, {"Origin": "null"}, _initialize())
        lookalike = await _post(base, key, {"Origin": f"http://127.0.0.1.{EVIL}:{port}"}, {})
        wrong_scheme = await _post(base, key, {"Origin": f"ftp://{local}"}, _initialize())
        # Refused before authentication: a foreign page learns nothing about keys.
        anonymous = await _post(base, None, {"Origin": f"http://{EVIL}"}, _initialize())
        # A tool call on an open session from a foreign page is refused too.
        opened = await _post(base, key, {}, _initialize())
        session = {"Mcp-Session-Id": opened.headers["mcp-session-id"]}
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "find_block", "arguments": {"query": "http"}},
        }
        foreign_call = await _post(base, key, {**session, "Origin": f"https://{EVIL}"}, call)
        own_call = await _post(base, key, session, call)
    for response in (cross_site, rebinding, sandboxed, lookalike, wrong_scheme, anonymous):
        _assert_refused(response, "Origin")
    _assert_refused(rebinding_no_origin, "Host")
    _assert_refused(foreign_call, "Origin")
    assert key not in cross_site.text
    assert opened.status_code == 200 and own_call.status_code == 200
    # Only the session opened without Origin made a blockpilot session; nothing else ran.
    sessions = await pilot.sessions.list(world["alice"].id)
    assert len(sessions) == 1
    assert await pilot.executions.list(world["alice"].id) == []


async def test_local_and_configured_origins_and_hosts_are_served(world: dict[str, Any]) -> None:
    pilot, alice_key, bob_key = world["pilot"], world["alice_key"], world["bob_key"]
    async with _service(pilot) as (base, port):
        accepted = {
            "no Origin (not a browser)": {},
            "localhost": {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"},
            "127.0.0.1": {"Host": f"127.0.0.1:{port}", "Origin": f"http://127.0.0.1:{port}"},
            "[::1]": {"Host": f"[::1]:{port}", "Origin": f"http://[::1]:{port}"},
            "configured": {"Host": "mcp.example.com", "Origin": "https://app.example.com"},
            "trailing dot": {"Host": f"localhost.:{port}"},
        }
        answers = {
            name: await _post(base, alice_key, h, _initialize()) for name, h in accepted.items()
        }
        # What the conformance suite does next: the initialized notification, same headers.
        local = accepted["localhost"]
        notified = await _post(
            base,
            alice_key,
            {**local, "Mcp-Session-Id": answers["localhost"].headers["mcp-session-id"]},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
        )
        other_port = await _post(
            base, bob_key, {"Origin": "https://app.example.com:8443"}, _initialize()
        )
    for name, response in answers.items():
        assert response.status_code == 200, (name, response.text)
        assert response.json()["result"]["serverInfo"]["name"] == "blockpilot", name
    assert notified.status_code == 202
    _assert_refused(other_port, "Origin")  # a configured origin is that origin, port included
