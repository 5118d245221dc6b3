"""MCP over streamable HTTP: the ASGI app mounted in a small Starlette app, served by
uvicorn on a free port, driven by the SDK's HTTP client and by raw requests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import INVALID_PARAMS, ElicitRequestURLParams, ElicitResult
from starlette.applications import Starlette
from starlette.routing import Route

from blockpilot.mcp import MCPHttpApp, api_key_authenticator
from blockpilot.mcp.http import Authenticate
from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from blockpilot.testing import serve_asgi
from tests.mcp.mcp_helpers import (
    CALCULATOR_BLOCK_ID,
    EMAIL_BLOCK_ID,
    MCP_HEADERS,
    SETUP_BASE,
    initialize,
)

TIMEOUT = 20
INIT = initialize()


@asynccontextmanager
async def serve(
    pilot: Pilot, authenticate: Authenticate, *, standalone: bool = False
) -> AsyncIterator[str]:
    """The MCP app at /mcp of a Starlette app (or alone), on a real socket; yields its URL."""
    mcp_http = MCPHttpApp(pilot, authenticate)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with mcp_http.lifespan():
            yield

    app: Any = mcp_http
    if not standalone:
        app = Starlette(
            routes=[Route("/mcp", endpoint=mcp_http, methods=["GET", "POST", "DELETE"])],
            lifespan=lifespan,
        )
    async with serve_asgi(app, timeout=TIMEOUT) as base:
        yield f"{base}/mcp"


@asynccontextmanager
async def connect(url: str, token: str, **options: Any) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        create_mcp_http_client(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http), **options) as client,
    ):
        yield client


@pytest.fixture
def keys(alice: User, bob: User) -> dict[str, str]:
    return {"key-alice": alice.id, "key-bob": bob.id}


@pytest.fixture
async def url(pilot: Pilot, keys: dict[str, str]) -> AsyncIterator[str]:
    async with serve(pilot, keys.get) as endpoint:
        yield endpoint


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_sdk_client_over_http_runs_as_the_keys_user(
    pilot: Pilot, alice: User, bob: User, url: str, mode: str
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with connect(url, "key-alice", mode=mode) as client:
            tools = (await client.list_tools()).tools
            found = await client.call_tool("find_block", {"query": "email"})
            ran = await client.call_tool(
                "run_block",
                {
                    "block_id": CALCULATOR_BLOCK_ID,
                    "input_data": {"operation": "subtract", "a": 9, "b": 4},
                },
            )
            with pytest.raises(MCPError) as unknown:
                await client.call_tool("nope", {})
        async with connect(url, "key-bob", mode=mode) as client:
            as_bob = await client.call_tool("find_block", {"query": "email"})
    assert {t.name: t.input_schema for t in tools} == {
        n: t.parameters for n, t in pilot.tools.items()
    }
    assert found.structured_content["type"] == "block_list"
    assert ran.structured_content["outputs"]["result"] == [5]
    assert unknown.value.error.code == INVALID_PARAMS
    session = found.structured_content["session_id"]
    assert ran.structured_content["session_id"] == session
    assert await pilot.sessions.get(alice.id, session) is not None
    assert await pilot.sessions.get(bob.id, as_bob.structured_content["session_id"]) is not None
    assert as_bob.structured_content["session_id"] != session


async def test_each_mcp_session_gets_its_own_blockpilot_session(url: str) -> None:
    with anyio.fail_after(TIMEOUT):
        async with connect(url, "key-alice", mode="legacy") as first:
            one = await first.call_tool("find_block", {"query": "email"})
            async with connect(url, "key-alice", mode="legacy") as second:
                two = await second.call_tool("find_block", {"query": "email"})
            again = await first.call_tool("find_block", {"query": "http"})
    assert one.structured_content["session_id"] == again.structured_content["session_id"]
    assert one.structured_content["session_id"] != two.structured_content["session_id"]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_setup_link_and_url_elicitation_over_http(
    pilot: Pilot, url: str, setup_urls: str, mode: str
) -> None:
    asked: list[str] = []

    async def on_elicit(context: Any, params: Any) -> ElicitResult:
        assert isinstance(params, ElicitRequestURLParams)
        asked.append(params.url)
        return ElicitResult(action="accept")

    with anyio.fail_after(TIMEOUT):
        async with connect(url, "key-alice", mode=mode, elicitation_callback=on_elicit) as client:
            result = await client.call_tool(
                "run_block", {"block_id": EMAIL_BLOCK_ID, "input_data": {}}
            )
    [link] = asked
    assert link.startswith(f"{SETUP_BASE}/")
    assert result.structured_content["type"] == "setup_requirements"
    # The person was shown the link: the model's result does not repeat it (issue 11, item 8).
    assert link not in str(result.content) and link not in json.dumps(result.structured_content)
    assert "shown to the user directly" in result.content[0].text and result.is_error is False


async def test_requests_without_a_valid_key_are_401(url: str) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        missing = await http.post(url, json=INIT, headers=MCP_HEADERS)
        wrong = await http.post(
            url, json=INIT, headers={**MCP_HEADERS, "Authorization": "Bearer nope"}
        )
        basic = await http.post(
            url, json=INIT, headers={**MCP_HEADERS, "Authorization": "Basic a2V5LWFsaWNl"}
        )
    for response in (missing, wrong, basic):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]["code"] == "auth_required"


async def test_malformed_bodies_get_protocol_errors_and_others_keep_being_served(url: str) -> None:
    auth = {**MCP_HEADERS, "Authorization": "Bearer key-alice"}
    with anyio.fail_after(TIMEOUT):
        async with connect(url, "key-bob", mode="legacy") as bystander:
            async with httpx.AsyncClient(timeout=TIMEOUT) as http:
                not_json = await http.post(url, content=b"{not json", headers=auth)
                not_rpc = await http.post(url, content=json.dumps({"hello": "world"}), headers=auth)
                opened = await http.post(url, json=INIT, headers=auth)
                session = {**auth, "mcp-session-id": opened.headers["mcp-session-id"]}
                bad_params = await http.post(
                    url,
                    json={
                        "jsonrpc": "2.0",
                        "id": 2,
                        "method": "tools/call",
                        "params": {"name": ["x"]},
                    },
                    headers={**session, "Accept": "application/json, text/event-stream"},
                )
            result = await bystander.call_tool("find_block", {"query": "email"})
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == -32700
    assert not_rpc.status_code == 400 and not_rpc.json()["error"]["code"] in (
        -32600,
        -32602,
    )  # the SDK says -32602
    assert opened.status_code == 200
    assert "-32602" in bad_params.text  # answered on the SSE stream, as JSON-RPC
    assert result.structured_content["type"] == "block_list"


async def test_a_session_is_bound_to_the_user_that_opened_it(url: str) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        opened = await http.post(
            url, json=INIT, headers={**MCP_HEADERS, "Authorization": "Bearer key-alice"}
        )
        session_id = opened.headers["mcp-session-id"]
        hijack = await http.post(
            url,
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            headers={
                **MCP_HEADERS,
                "Authorization": "Bearer key-bob",
                "mcp-session-id": session_id,
            },
        )
    assert hijack.status_code == 404


async def test_real_api_keys_through_api_key_authenticator(pilot: Pilot) -> None:
    carol, key = await pilot.users.create("carol")
    async with serve(pilot, api_key_authenticator(pilot)) as endpoint:
        async with connect(endpoint, key) as client:
            found = await client.call_tool("find_block", {"query": "email"})
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            refused = await http.post(
                endpoint, json=INIT, headers={**MCP_HEADERS, "Authorization": f"Bearer {key}x"}
            )
    assert await pilot.sessions.get(carol.id, found.structured_content["session_id"]) is not None
    assert refused.status_code == 401


async def test_the_app_refuses_requests_until_its_lifespan_runs(
    pilot: Pilot, keys: dict[str, str]
) -> None:
    app = MCPHttpApp(pilot, keys.get)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post(
            "/mcp", json=INIT, headers={**MCP_HEADERS, "Authorization": "Bearer key-alice"}
        )
    assert response.status_code == 503


async def test_the_app_also_runs_on_its_own(pilot: Pilot, keys: dict[str, str]) -> None:
    async with serve(pilot, keys.get, standalone=True) as endpoint:
        with anyio.fail_after(TIMEOUT):
            async with connect(endpoint, "key-alice") as client:
                found = await client.call_tool("find_block", {"query": "email"})
    assert found.structured_content["type"] == "block_list"
