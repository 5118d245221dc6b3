"""POST /tools/{name}: the in-process tool semantics over HTTP, sessions, and GET /tools."""

from __future__ import annotations

import json

import httpx
import pytest

from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from tests.api.api_helpers import assert_error

CALCULATOR = "b1ab9b19-67a6-406d-abf5-2dba76d00c79"
LLM_QUERY = {"query": "call a large language model"}


async def test_find_block_returns_the_tool_response_and_a_new_session(
    as_alice: httpx.AsyncClient,
) -> None:
    response = await as_alice.post("/api/v1/tools/find_block", json={"query": "calculator"})
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "block_list"
    assert CALCULATOR in [b["id"] for b in body["blocks"]]
    assert body["session_id"] and response.headers["x-session-id"] == body["session_id"]


async def test_run_block_over_http_is_byte_for_byte_the_in_process_response(
    pilot: Pilot, alice: User, as_alice: httpx.AsyncClient
) -> None:
    session = (await as_alice.post("/api/v1/sessions")).json()["session_id"]
    headers = {"X-Session-Id": session}
    for arguments in (
        {"block_id": CALCULATOR, "input_data": {}},  # block_details: the schema
        {"block_id": CALCULATOR, "input_data": {"operation": "add", "a": 1, "b": 2, "typo": 1}},
        {"block_id": CALCULATOR, "input_data": {"operation": "add", "a": "x", "b": 2}},
        {"block_id": "", "input_data": {}},  # a tool error is still a 200 outcome
        {"block_id": CALCULATOR, "input_data": [1]},
        {"nonsense": True},
    ):
        over_http = await as_alice.post("/api/v1/tools/run_block", json=arguments, headers=headers)
        in_process = await pilot.call_tool(
            "run_block", arguments, user_id=alice.id, session_id=session
        )
        assert over_http.status_code == 200
        assert over_http.content == in_process.to_json().encode()


async def test_setup_requirements_match_in_process(
    pilot: Pilot, alice: User, as_alice: httpx.AsyncClient
) -> None:
    found = (await as_alice.post("/api/v1/tools/find_block", json=LLM_QUERY)).json()
    block_id = found["blocks"][0]["id"]
    session = found["session_id"]
    arguments = {"block_id": block_id, "input_data": {"prompt": "hi"}}
    over_http = await as_alice.post(
        "/api/v1/tools/run_block", json=arguments, headers={"X-Session-Id": session}
    )
    in_process = await pilot.call_tool("run_block", arguments, user_id=alice.id, session_id=session)
    assert over_http.json() == json.loads(in_process.to_json())
    assert over_http.json()["type"] == "setup_requirements"


async def test_run_block_executes_and_records_the_execution(as_alice: httpx.AsyncClient) -> None:
    arguments = {"block_id": CALCULATOR, "input_data": {"operation": "multiply", "a": 6, "b": 7}}
    body = (await as_alice.post("/api/v1/tools/run_block", json=arguments)).json()
    assert body["type"] == "block_output"
    assert body["outputs"] == {"result": [42.0]}
    record = await as_alice.get(f"/api/v1/executions/{body['execution_id']}")
    assert record.status_code == 200
    assert record.json()["status"] == "completed"
    assert record.json()["session_id"] == body["session_id"]


async def test_session_is_reused_with_the_header(as_alice: httpx.AsyncClient) -> None:
    first = await as_alice.post("/api/v1/tools/find_block", json={"query": "calculator"})
    session = first.headers["x-session-id"]
    again = await as_alice.post(
        "/api/v1/tools/find_block", json={"query": "email"}, headers={"X-Session-Id": session}
    )
    assert again.json()["session_id"] == session == again.headers["x-session-id"]
    listed = (await as_alice.get("/api/v1/sessions")).json()["sessions"]
    assert [s["session_id"] for s in listed] == [session]


async def test_another_users_session_is_not_found_and_nothing_runs(
    pilot: Pilot, alice: User, as_alice: httpx.AsyncClient, as_bob: httpx.AsyncClient
) -> None:
    alice_session = (await as_alice.post("/api/v1/sessions")).json()["session_id"]
    arguments = {"block_id": CALCULATOR, "input_data": {"operation": "add", "a": 1, "b": 1}}
    response = await as_bob.post(
        "/api/v1/tools/run_block", json=arguments, headers={"X-Session-Id": alice_session}
    )
    assert_error(response, 404, "session_not_found")
    assert (await as_bob.get("/api/v1/executions")).json() == {"executions": []}
    assert (await as_bob.get("/api/v1/sessions")).json() == {"sessions": []}
    assert await pilot.executions.list(alice.id) == []


async def test_unknown_session_id_is_not_found(as_alice: httpx.AsyncClient) -> None:
    response = await as_alice.post(
        "/api/v1/tools/find_block", json={"query": "x"}, headers={"X-Session-Id": "nope"}
    )
    assert_error(response, 404, "session_not_found")


async def test_unknown_tool_is_404_and_creates_no_session(as_alice: httpx.AsyncClient) -> None:
    error = assert_error(
        await as_alice.post("/api/v1/tools/delete_everything", json={}), 404, "tool_not_found"
    )
    assert error["details"] == {
        "available_tools": ["find_block", "run_block", "continue_run_block", "get_execution"]
    }
    assert (await as_alice.get("/api/v1/sessions")).json() == {"sessions": []}


async def test_empty_body_means_no_arguments(
    pilot: Pilot, alice: User, as_alice: httpx.AsyncClient
) -> None:
    response = await as_alice.post("/api/v1/tools/find_block")
    assert response.status_code == 200
    session = response.json()["session_id"]
    expected = await pilot.call_tool("find_block", {}, user_id=alice.id, session_id=session)
    assert response.content == expected.to_json().encode()


@pytest.mark.parametrize(
    ("fmt", "key"), [("openai", "function"), ("anthropic", "input_schema"), ("mcp", "inputSchema")]
)
async def test_tools_are_exported_in_each_format(
    pilot: Pilot, as_alice: httpx.AsyncClient, fmt: str, key: str
) -> None:
    body = (await as_alice.get("/api/v1/tools", params={"format": fmt})).json()
    assert body == {"format": fmt, "tools": pilot.export_tools(fmt)}
    assert all(key in tool for tool in body["tools"])


async def test_tools_default_to_openai_and_reject_unknown_formats(
    as_alice: httpx.AsyncClient,
) -> None:
    assert (await as_alice.get("/api/v1/tools")).json()["format"] == "openai"
    assert_error(
        await as_alice.get("/api/v1/tools", params={"format": "xml"}), 422, "invalid_request"
    )


async def test_an_empty_session_header_starts_a_new_session(as_alice: httpx.AsyncClient) -> None:
    response = await as_alice.post(
        "/api/v1/tools/find_block", json={"query": "x"}, headers={"X-Session-Id": ""}
    )
    assert response.status_code == 200
    assert response.json()["session_id"] == response.headers["x-session-id"]


async def test_an_overlong_session_header_is_refused_before_anything_runs(
    pilot: Pilot, alice: User, as_alice: httpx.AsyncClient
) -> None:
    response = await as_alice.post(
        "/api/v1/tools/find_block", json={"query": "x"}, headers={"X-Session-Id": "s" * 129}
    )
    error = assert_error(response, 422, "invalid_request")
    assert error["details"]["errors"] == [
        {"loc": ["header", "X-Session-Id"], "message": "String should have at most 128 characters"}
    ]
    assert await pilot.sessions.list(alice.id) == []  # no session was made
    ok = await as_alice.post(
        "/api/v1/tools/find_block", json={"query": "x"}, headers={"X-Session-Id": "s" * 128}
    )
    assert_error(ok, 404, "session_not_found")  # the length is fine; the session is unknown
