"""One user cannot fill the MCP session pool (issue 11 #5; docs/mcp.md).

Each user may hold ``BLOCKPILOT_MCP_MAX_SESSIONS_PER_USER`` open streamable-HTTP sessions
(per process); the one over it gets a 429 with a JSON-RPC error naming the cap, everyone
else is served. Idle sessions are closed after ``BLOCKPILOT_MCP_SESSION_IDLE_SECONDS``.
Raw HTTP over a real socket to the whole service (``create_app``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import httpx

from blockpilot.api import create_app
from blockpilot.testing import serve_asgi
from tests.security.sec_helpers import CANARIES

MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
FIND = {
    "jsonrpc": "2.0",
    "id": 2,
    "method": "tools/call",
    "params": {"name": "find_block", "arguments": {"query": "http"}},
}


def _initialize(elicitation: bool = False) -> dict[str, Any]:
    capabilities = {"elicitation": {"url": {}}} if elicitation else {}
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": capabilities,
            "clientInfo": {"name": "sessions-test", "version": "0"},
        },
    }


class _Client:
    """Raw streamable-HTTP requests of one API key."""

    def __init__(self, http: httpx.AsyncClient, base: str, key: str) -> None:
        self.http, self.url, self.key = http, f"{base}/mcp", key

    async def send(
        self, body: Any, session: str | None = None, method: str = "POST"
    ) -> httpx.Response:
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {self.key}"}
        if session:
            headers["Mcp-Session-Id"] = session
        response = await self.http.request(
            method, self.url, content=None if body is None else json.dumps(body), headers=headers
        )
        CANARIES.saw("mcp sessions response", response.text)
        return response

    async def open(self, elicitation: bool = False) -> httpx.Response:
        return await self.send(_initialize(elicitation))


def _tool_result(response: httpx.Response) -> dict[str, Any]:
    text = response.text
    if response.headers["content-type"].startswith("text/event-stream"):
        text = next(line[6:] for line in text.splitlines() if line.startswith("data: "))
    result: dict[str, Any] = json.loads(text)["result"]
    return result


async def test_a_user_at_the_session_cap_is_refused_and_others_are_served(
    open_pilot: Callable[..., Any],
) -> None:
    pilot = await open_pilot(mcp_max_sessions_per_user=3)
    alice, alice_key = await pilot.users.create("alice")
    _, bob_key = await pilot.users.create("bob")
    canary = CANARIES.new("hdr")
    await pilot.add_credentials(
        alice.id,
        {
            "provider": "http",
            "type": "host_scoped",
            "host": "api.example.com",
            "headers": {"X": canary},
        },
    )
    async with (
        serve_asgi(create_app(pilot), timeout=20) as base,
        httpx.AsyncClient(timeout=20) as http,
    ):
        a, b = _Client(http, base, alice_key), _Client(http, base, bob_key)
        # Three sessions, one of them an SSE session (a client declaring URL elicitation).
        mine = [await a.open(), await a.open(elicitation=True), await a.open()]
        refused = await a.open()
        refused_sse = await a.open(elicitation=True)
        bobs = [await b.open() for _ in range(3)]  # his full allowance
        bob_call = await b.send(FIND, bobs[-1].headers["mcp-session-id"])
        # Alice's open sessions keep working at the cap.
        still = await a.send(FIND, mine[0].headers["mcp-session-id"])
        # Closing one (DELETE) makes room for exactly one more.
        closed = await a.send(None, mine[2].headers["mcp-session-id"], method="DELETE")
        reopened = await a.open()
        refused_again = await a.open()
    assert [r.status_code for r in mine] == [200, 200, 200]
    for response in (refused, refused_sse, refused_again):
        assert response.status_code == 429, response.text
        assert "mcp-session-id" not in response.headers
        assert int(response.headers["retry-after"]) >= 1
        error = response.json()["error"]
        assert response.json()["id"] is None
        assert error["data"]["code"] == "too_many_sessions"
        assert error["data"]["details"] == {"max_sessions_per_user": 3}
        assert "BLOCKPILOT_MCP_MAX_SESSIONS_PER_USER" in error["message"]
    assert [r.status_code for r in bobs] == [200] * 3
    assert _tool_result(bob_call)["structuredContent"]["type"] == "block_list"
    assert _tool_result(still)["structuredContent"]["type"] == "block_list"
    assert closed.status_code == 200 and reopened.status_code == 200


async def test_idle_sessions_are_closed_and_free_their_place(
    open_pilot: Callable[..., Any],
) -> None:
    idle = 0.3
    pilot = await open_pilot(mcp_max_sessions_per_user=2, mcp_session_idle_seconds=idle)
    _, key = await pilot.users.create("alice")
    async with (
        serve_asgi(create_app(pilot), timeout=20) as base,
        httpx.AsyncClient(timeout=20) as http,
    ):
        a = _Client(http, base, key)
        first, second = await a.open(), await a.open()
        at_cap = await a.open()
        # A session with a request in flight is not idle: a GET stream held open for
        # several idle periods keeps its session alive.
        session = second.headers["mcp-session-id"]
        headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {key}"}
        async with http.stream(
            "GET", f"{base}/mcp", headers={**headers, "Mcp-Session-Id": session}
        ) as stream:
            assert stream.status_code == 200
            await anyio.sleep(idle * 8)
        kept = await a.send(FIND, session)
        # Left alone well beyond the idle time, both sessions are closed: the ids are
        # unknown (404, the client starts a new session) and their places are free.
        await anyio.sleep(idle * 8)
        gone = await a.send(FIND, first.headers["mcp-session-id"])
        gone_too = await a.send(FIND, session)
        again = [await a.open(), await a.open()]
    assert [first.status_code, second.status_code, at_cap.status_code] == [200, 200, 429]
    assert kept.status_code == 200, kept.text
    assert gone.status_code == 404 and gone_too.status_code == 404
    assert [r.status_code for r in again] == [200, 200]
