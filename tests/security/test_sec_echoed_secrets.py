"""Secrets an upstream echoes in another shape, and query strings in logs (issue 11, items 6
and 11)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.net.net_servers import LocalServer, reply
from tests.security.sec_helpers import AUTH_WEB_REQUEST_ID, CANARIES, WEB_REQUEST_ID, tool_json


async def _run(pilot: Any, user: Any, block_id: str, input_data: dict[str, Any]) -> dict[str, Any]:
    arguments = {"block_id": block_id, "input_data": input_data}
    return tool_json(await pilot.call_tool("run_block", arguments, user_id=user.id))


@pytest.mark.parametrize("scheme", ["Bearer", "Token", "token="])
async def test_the_token_inside_a_stored_header_is_redacted_when_echoed_alone(
    pilot: Any, alice: Any, scheme: str
) -> None:
    token = f"Zq{CANARIES.new('tok')}"
    stored = f"{scheme}{token}" if scheme.endswith("=") else f"{scheme} {token}"
    with LocalServer() as upstream:
        upstream.route("/echo", reply(200, f"your token was {token}; bye".encode()))
        await pilot.add_credentials(
            alice.id,
            {
                "provider": "http",
                "type": "host_scoped",
                "host": f"127.0.0.1:{upstream.port}",
                "headers": {"Authorization": stored},
            },
        )
        result = await _run(
            pilot, alice, AUTH_WEB_REQUEST_ID, {"url": upstream.url("/echo"), "method": "GET"}
        )
        assert upstream.hits and upstream.hits[0].headers.get("authorization") == stored
    assert result["type"] == "block_output", result
    assert "your token was" in str(result)
    assert token not in str(result)
    [record] = await pilot.executions.list(alice.id)
    assert token not in str(record.public())


async def test_block_request_query_strings_never_reach_the_logs(
    pilot: Any, alice: Any, caplog: pytest.LogCaptureFixture
) -> None:
    signature, token = "sig0ZK81presigned", "tokQ9query7secret"
    caplog.set_level(logging.DEBUG, logger="httpx")
    caplog.set_level(logging.DEBUG, logger="httpcore")
    with LocalServer() as upstream:
        url = upstream.url(f"/file?sig={signature}&token={token}&x=1")
        result = await _run(pilot, alice, WEB_REQUEST_ID, {"url": url, "method": "GET"})
        assert upstream.hits and token in upstream.hits[0].path  # the request did carry them
    assert result["type"] == "block_output", result
    logged = [r.getMessage() for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]
    assert any("HTTP Request" in m and "/file" in m for m in logged), logged  # httpx did log it
    for message in logged:
        assert signature not in message and token not in message, message
