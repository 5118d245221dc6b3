"""The MCP server driven by the SDK's own client, in-process: both protocol eras (the
2025 handshake over memory streams, the 2026 per-request path), sessions, outcomes,
protocol errors and URL elicitation."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError
from mcp.server import Server
from mcp.shared.memory import create_client_server_memory_streams
from mcp.shared.message import SessionMessage
from mcp_types import (
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    ElicitRequestURLParams,
    ElicitResult,
    JSONRPCNotification,
    JSONRPCRequest,
)

from blockpilot.mcp import build_mcp_server
from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from tests.mcp.mcp_helpers import CALCULATOR_BLOCK_ID, EMAIL_BLOCK_ID, SETUP_BASE

MODES = ["legacy", "auto"]  # 2025-11-25 handshake over JSON-RPC streams; 2026-07-28 direct


@pytest.fixture
def server(pilot: Pilot, alice: User) -> Server[Any]:
    return build_mcp_server(pilot, alice.id)


@pytest.mark.parametrize("mode", MODES)
async def test_tools_have_the_tools_own_schemas(
    pilot: Pilot, server: Server[Any], mode: str
) -> None:
    async with Client(server, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"find_block", "run_block", "continue_run_block", "get_execution"}
    for name, tool in tools.items():
        assert tool.input_schema == pilot.tools[name].parameters
        assert tool.description == pilot.tools[name].description
        assert tool.output_schema is not None and tool.output_schema["required"] == [
            "type",
            "message",
        ]
    assert tools["find_block"].annotations.read_only_hint is True
    assert tools["run_block"].annotations.read_only_hint is False


@pytest.mark.parametrize("mode", MODES)
async def test_results_are_structured_with_the_json_as_text(
    pilot: Pilot, alice: User, server: Server[Any], mode: str
) -> None:
    async with Client(server, mode=mode) as client:
        result = await client.call_tool("find_block", {"query": "send an email"})
    assert result.is_error is False
    data = result.structured_content
    assert data["type"] == "block_list"
    assert any(b["id"] == EMAIL_BLOCK_ID for b in data["blocks"])
    assert json.loads(result.content[-1].text) == data
    expected = await pilot.call_tool(
        "find_block", {"query": "send an email"}, user_id=alice.id, session_id=data["session_id"]
    )
    assert expected.model_dump(mode="json") == data


@pytest.mark.parametrize("mode", MODES)
async def test_one_session_per_connection_owned_by_the_user(
    pilot: Pilot, alice: User, bob: User, server: Server[Any], mode: str
) -> None:
    async with Client(server, mode=mode) as client:
        first = (await client.call_tool("find_block", {"query": "email"})).structured_content
        second = (
            await client.call_tool("run_block", {"block_id": CALCULATOR_BLOCK_ID, "input_data": {}})
        ).structured_content
    assert first["session_id"] == second["session_id"]
    assert await pilot.sessions.get(alice.id, first["session_id"]) is not None
    assert await pilot.sessions.get(bob.id, first["session_id"]) is None
    async with Client(server, mode=mode) as client:
        other = (await client.call_tool("find_block", {"query": "email"})).structured_content
    assert other["session_id"] != first["session_id"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_block_runs_and_its_outputs_are_structured(server: Server[Any], mode: str) -> None:
    async with Client(server, mode=mode) as client:
        result = await client.call_tool(
            "run_block",
            {"block_id": CALCULATOR_BLOCK_ID, "input_data": {"operation": "add", "a": 2, "b": 3}},
        )
    assert result.is_error is False
    assert result.structured_content["type"] == "block_output"
    assert result.structured_content["outputs"]["result"] == [5]


@pytest.mark.parametrize("mode", MODES)
async def test_tool_errors_are_is_error_results_and_the_server_keeps_serving(
    server: Server[Any], mode: str
) -> None:
    async with Client(server, mode=mode) as client:
        missing = await client.call_tool(
            "run_block", {"block_id": "no-such-block", "input_data": {}}
        )
        wrong_types = await client.call_tool(
            "run_block", {"block_id": CALCULATOR_BLOCK_ID, "input_data": "x"}
        )
        bad_flag = await client.call_tool(
            "find_block", {"query": "email", "include_schemas": "yes"}
        )
        unknown_arg = await client.call_tool("find_block", {"query": "email", "limit": 3})
        still_fine = await client.call_tool("find_block", {"query": "email"})
    assert (missing.is_error, missing.structured_content["code"]) == (True, "block_not_found")
    assert (wrong_types.is_error, wrong_types.structured_content["code"]) == (
        True,
        "invalid_input_data",
    )
    assert "input_data must be an object" in wrong_types.content[-1].text
    assert (bad_flag.is_error, bad_flag.structured_content["code"]) == (True, "invalid_arguments")
    assert (unknown_arg.is_error, unknown_arg.structured_content["code"]) == (
        True,
        "invalid_arguments",
    )
    assert still_fine.is_error is False


@pytest.mark.parametrize("mode", MODES)
async def test_unknown_tool_is_a_protocol_error(server: Server[Any], mode: str) -> None:
    async with Client(server, mode=mode) as client:
        with pytest.raises(MCPError) as caught:
            await client.call_tool("delete_everything", {})
        assert caught.value.error.code == INVALID_PARAMS
        assert "Unknown tool: delete_everything" in caught.value.error.message
        assert (await client.call_tool("find_block", {"query": "email"})).is_error is False


@pytest.mark.parametrize("mode", MODES)
async def test_setup_requirements_put_the_link_first(
    server: Server[Any], setup_urls: str, mode: str
) -> None:
    async with Client(server, mode=mode) as client:  # no elicitation support declared
        result = await client.call_tool("run_block", {"block_id": EMAIL_BLOCK_ID, "input_data": {}})
    assert result.is_error is False
    data = result.structured_content
    assert data["type"] == "setup_requirements"
    url = data["setup_info"]["requirements"]["credentials"][0]["setup_url"]
    assert url.startswith(f"{SETUP_BASE}/")
    first = result.content[0].text
    assert first.startswith("ACTION REQUIRED") and url in first
    assert json.loads(result.content[-1].text) == data


async def test_setup_without_a_service_tells_how_to_add_the_credential(server: Server[Any]) -> None:
    async with Client(server) as client:
        result = await client.call_tool("run_block", {"block_id": EMAIL_BLOCK_ID, "input_data": {}})
    text = result.content[0].text
    assert "blockpilot credentials add" in text and '"provider": "smtp"' in text


class Elicitations:
    """A client's URL-elicitation handler that records what it was asked and answers."""

    def __init__(self, action: str = "accept") -> None:
        self.action = action
        self.seen: list[ElicitRequestURLParams] = []

    async def __call__(self, context: Any, params: Any) -> ElicitResult:
        assert isinstance(params, ElicitRequestURLParams)
        self.seen.append(params)
        return ElicitResult(action=self.action)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("action", "note"), [("accept", "agreed to open it"), ("decline", "declined")]
)
async def test_url_elicitation_where_the_client_supports_it(
    server: Server[Any], setup_urls: str, mode: str, action: str, note: str
) -> None:
    handler = Elicitations(action)
    async with Client(server, mode=mode, elicitation_callback=handler) as client:
        result = await client.call_tool("run_block", {"block_id": EMAIL_BLOCK_ID, "input_data": {}})
    [link] = [p.url for p in handler.seen]
    assert link.startswith(f"{SETUP_BASE}/")
    assert "smtp" in handler.seen[0].message.lower()
    if mode == "legacy":
        assert handler.seen[0].elicitation_id  # required on the 2025-11-25 wire
    assert result.structured_content["type"] == "setup_requirements"
    assert note in result.content[0].text
    # Shown and accepted: the link stays out of what the model reads (issue 11, item 8).
    shown = link in str(result.content) or link in json.dumps(result.structured_content)
    assert shown is (action != "accept")


async def test_no_user_means_need_login(pilot: Pilot) -> None:
    server = build_mcp_server(pilot, lambda ctx: None)
    async with Client(server) as client:
        result = await client.call_tool("find_block", {"query": "email"})
    assert result.is_error is True
    assert result.structured_content["type"] == "need_login"


async def test_a_failure_of_ours_is_a_generic_error_result(pilot: Pilot, alice: User) -> None:
    calls = 0

    async def flaky(ctx: Any) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database on fire: secret-detail")
        return alice.id

    async with Client(build_mcp_server(pilot, flaky)) as client:
        broken = await client.call_tool("find_block", {"query": "email"})
        fine = await client.call_tool("find_block", {"query": "email"})
    assert broken.is_error is True
    assert broken.structured_content["code"] == "internal_error"
    assert "secret-detail" not in broken.content[-1].text
    assert fine.is_error is False


async def test_a_deleted_user_gets_an_error_result_not_a_crash(pilot: Pilot) -> None:
    async with Client(build_mcp_server(pilot, "00000000-0000-4000-8000-000000000000")) as client:
        result = await client.call_tool("find_block", {"query": "email"})
    assert result.is_error is True
    assert result.structured_content["code"] == "user_not_found"


async def test_malformed_requests_get_protocol_errors_over_memory_streams(
    server: Server[Any],
) -> None:
    """Raw JSON-RPC on the SDK's memory streams: bad params and unknown methods are answered
    with errors, and the connection goes on serving."""
    answers: dict[int, dict[str, Any]] = {}
    async with (
        create_client_server_memory_streams() as (
            (client_read, client_write),
            (server_read, server_write),
        ),
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(
            lambda: server.run(server_read, server_write, server.create_initialization_options())
        )

        async def request(request_id: int, method: str, params: Any = None) -> dict[str, Any]:
            message = JSONRPCRequest(jsonrpc="2.0", id=request_id, method=method, params=params)
            await client_write.send(SessionMessage(message))
            while request_id not in answers:
                item = await client_read.receive()
                payload = item.message.model_dump(by_alias=True, mode="json", exclude_none=True)
                if "id" in payload:
                    answers[payload["id"]] = payload
            return answers[request_id]

        init = await request(
            1,
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        )
        assert init["result"]["serverInfo"]["name"] == "blockpilot"
        await client_write.send(
            SessionMessage(JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized"))
        )
        assert (await request(2, "tools/call", {"name": 42}))["error"]["code"] == INVALID_PARAMS
        bad_args = await request(
            3, "tools/call", {"name": "find_block", "arguments": "query=email"}
        )
        assert bad_args["error"]["code"] == INVALID_PARAMS
        assert (await request(4, "blocks/explode"))["error"]["code"] == METHOD_NOT_FOUND
        assert (await request(5, "tools/call", {"name": "nope", "arguments": {}}))["error"][
            "code"
        ] == INVALID_PARAMS
        ok = await request(6, "tools/call", {"name": "find_block", "arguments": {"query": "email"}})
        assert ok["result"]["structuredContent"]["type"] == "block_list"
        assert ok["result"]["isError"] is False
        await client_write.aclose()
