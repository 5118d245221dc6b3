"""MCP over HTTP answers with one JSON body, except in sessions that may need a mid-call
request to the client (URL elicitation on a 2025 protocol), which get SSE streams."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from blockpilot.api import create_app
from blockpilot.mcp import response_modes
from blockpilot.mcp.response_modes import needs_sse
from blockpilot.pilot import Pilot
from blockpilot.testing import serve_asgi
from tests.mcp.mcp_helpers import CALCULATOR_BLOCK_ID, MCP_HEADERS, initialize

URL_ELICITATION = {"elicitation": {"form": {}, "url": {}}}


@pytest.fixture
async def client(pilot: Pilot) -> AsyncIterator[httpx.AsyncClient]:
    _, key = await pilot.users.create("alice")
    async with (
        serve_asgi(create_app(pilot)) as base,
        httpx.AsyncClient(
            base_url=base, headers={**MCP_HEADERS, "Authorization": f"Bearer {key}"}, timeout=20
        ) as http,
    ):
        yield http


async def open_session(
    http: httpx.AsyncClient, capabilities: dict[str, Any] | None
) -> tuple[str, str]:
    """Initialize; the session id and the media type of the initialize answer."""
    response = await http.post("/mcp", json=initialize(capabilities=capabilities))
    assert response.status_code == 200, response.text
    session = response.headers["mcp-session-id"]
    initialized = await http.post(
        "/mcp",
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
        headers={"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"},
    )
    assert initialized.status_code == 202
    return session, response.headers["content-type"]


async def call_calculator(http: httpx.AsyncClient, session: str) -> httpx.Response:
    arguments = {
        "block_id": CALCULATOR_BLOCK_ID,
        "input_data": {"operation": "add", "a": 2, "b": 3},
    }
    return await http.post(
        "/mcp",
        json={
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "run_block", "arguments": arguments},
        },
        headers={"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"},
    )


async def test_a_client_that_cannot_be_asked_anything_gets_json(client: httpx.AsyncClient) -> None:
    session, opened_as = await open_session(client, None)
    assert opened_as.startswith("application/json")
    response = await call_calculator(client, session)
    assert response.headers["content-type"].startswith("application/json")
    result = response.json()["result"]
    assert result["isError"] is False and result["structuredContent"]["outputs"]["result"] == [5.0]


async def test_a_client_that_takes_url_elicitations_gets_sse(client: httpx.AsyncClient) -> None:
    session, opened_as = await open_session(client, URL_ELICITATION)
    assert opened_as.startswith("text/event-stream")
    response = await call_calculator(client, session)
    assert response.headers["content-type"].startswith("text/event-stream")
    data = next(line[6:] for line in response.text.splitlines() if line.startswith("data: "))
    assert json.loads(data)["result"]["structuredContent"]["outputs"]["result"] == [5.0]
    # Closing the session forgets it; its id is then unknown to both managers.
    deleted = await client.delete(
        "/mcp", headers={"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
    )
    assert deleted.status_code == 200
    assert (await call_calculator(client, session)).status_code == 404


async def test_forgotten_sse_sessions_start_over(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(response_modes, "MAX_REMEMBERED_SSE_SESSIONS", 1)
    first, _ = await open_session(client, URL_ELICITATION)
    second, _ = await open_session(client, URL_ELICITATION)
    assert (await call_calculator(client, second)).status_code == 200
    assert (await call_calculator(client, first)).status_code == 404  # the client re-initializes


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (initialize(capabilities=URL_ELICITATION), True),
        (initialize("2025-06-18", URL_ELICITATION), True),
        (initialize(capabilities={"elicitation": {"form": {}}}), False),  # form only: never asked
        (initialize(capabilities={"elicitation": {}}), False),
        (initialize(capabilities={"elicitation": {"url": None}}), False),
        (initialize(), False),
        (initialize("2026-07-28", URL_ELICITATION), False),  # asks for input in the result
        (initialize("1999-01-01", URL_ELICITATION), False),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, False),
        ([initialize(capabilities=URL_ELICITATION)], False),
        ({"method": "initialize", "params": "nope"}, False),
    ],
)
def test_which_initialize_needs_sse(body: Any, expected: bool) -> None:
    assert needs_sse(json.dumps(body).encode()) is expected


def test_malformed_bodies_go_to_json() -> None:
    assert needs_sse(b"{not json") is False
    assert needs_sse(b"\xff\xfe") is False
