"""Malformed JSON at every door: HTTP bodies, MCP messages, CLI options, upstream responses.

NaN and Infinity, duplicate keys, 10,000-deep nesting, numbers beyond any float or the int
digit limit, invalid UTF-8, lone surrogates, truncated documents: each is a clear 4xx (or
exit code 2), never a 500, a traceback or a half-written record.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from blockpilot.api import create_app
from blockpilot.cli.app import app as cli_app
from blockpilot.strict_json import StrictJSONError, loads_strict
from tests.net.net_servers import LocalServer, reply
from tests.security.sec_helpers import CALCULATOR_ID, CANARIES, WEB_REQUEST_ID, serve_app, tool_json

DEEP = 10_000

MALFORMED: dict[str, bytes] = {
    "nan": b'{"block_id": NaN}',
    "infinity": b'{"block_id": "x", "input_data": {"a": Infinity}}',
    "minus infinity": b'{"query": -Infinity}',
    "duplicate key": b'{"block_id": "a", "block_id": "b"}',
    "nested duplicate key": b'{"block_id": "x", "input_data": {"a": 1, "a": 2}}',
    "deep arrays": b"[" * DEEP + b"]" * DEEP,
    "deep objects": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "deep inside input_data": b'{"block_id": "x", "input_data": {"v": '
    + b"[" * DEEP
    + b"]" * DEEP
    + b"}}",
    "65 levels": b'{"a":' * 65 + b"1" + b"}" * 65,
    "huge integer": b'{"query": ' + b"9" * 5000 + b"}",
    "huge float": b'{"query": 1e999}',
    "huge negative float": b'{"query": -1e999}',
    "invalid utf-8": b'{"query": "\xff\xfe\xfd"}',
    "overlong utf-8": b'{"query": "\xc0\xaf"}',
    "utf-8 encoded surrogate": b'{"query": "\xed\xa0\x80"}',
    "lone high surrogate": b'{"query": "\\ud800"}',
    "lone low surrogate": b'{"query": "x\\udfffy"}',
    "lone surrogate in a key": b'{"\\ud800": 1, "query": "x"}',
    "lone surrogate deep in input": b'{"block_id": "x", "input_data": {"a": [{"b": "\\udbff"}]}}',
    "truncated": b'{"query": "x"',
    "trailing comma": b'{"query": "x",}',
    "single quotes": b"{'query': 'x'}",
    "comment": b'{"query": "x" /* hi */}',
    "two documents": b'{"query": "x"} {"query": "y"}',
    "bare word": b"query",
    "nul byte": b'{"query": "x"}\x00',
}

# Valid JSON the parser must still take.
VALID = {
    "surrogate pair": (b'{"query": "\\ud83d\\ude00"}', {"query": "\U0001f600"}),
    "64 levels": (b'{"a":' * 63 + b"1" + b"}" * 63, None),
    "big but finite": (b'{"query": 1.7e308}', {"query": 1.7e308}),
    "escaped nul": (b'{"query": "a\\u0000b"}', {"query": "a\x00b"}),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_the_strict_parser_refuses(name: str) -> None:
    with pytest.raises(StrictJSONError):
        loads_strict(MALFORMED[name])


@pytest.mark.parametrize("name", sorted(VALID))
def test_the_strict_parser_still_accepts(name: str) -> None:
    body, expected = VALID[name]
    value = loads_strict(body)
    if expected is not None:
        assert value == expected


@pytest.fixture
async def served(open_pilot: Any) -> Any:
    pilot = await open_pilot()
    _, key = await pilot.users.create("mallory")
    return pilot, key


async def test_http_bodies_are_4xx_never_500(served: Any) -> None:
    pilot, key = served
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(pilot), raise_app_exceptions=False),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    ) as client:
        for route in ("/api/v1/tools/run_block", "/api/v1/tools/find_block", "/api/v1/credentials"):
            for name, body in MALFORMED.items():
                response = await client.post(route, content=body)
                CANARIES.saw("http", response.text)
                assert 400 <= response.status_code < 500, (
                    route,
                    name,
                    response.status_code,
                    response.text,
                )
                assert response.json()["error"]["code"] in ("malformed_body", "invalid_input"), (
                    route,
                    name,
                )
        # still serving, and the lone-surrogate refusal says what is wrong
        response = await client.post(
            "/api/v1/tools/find_block", content=MALFORMED["lone high surrogate"]
        )
        assert "lone surrogate" in response.json()["error"]["message"]
        ok = await client.post("/api/v1/tools/find_block", content=VALID["surrogate pair"][0])
        assert ok.status_code == 200


async def test_mcp_messages_are_never_500(served: Any) -> None:
    pilot, key = served
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {key}",
    }
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"},
        },
    }
    async with serve_app(create_app(pilot)) as base, httpx.AsyncClient(timeout=20) as http:
        opened = await http.post(f"{base}/mcp", json=init, headers=headers)
        session = {**headers, "mcp-session-id": opened.headers["mcp-session-id"]}
        await http.post(
            f"{base}/mcp",
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers=session,
        )
        for name, arguments in MALFORMED.items():
            body = (
                b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"run_block","arguments":'
                + arguments
                + b"}}"
            )
            response = await http.post(f"{base}/mcp", content=body, headers=session)
            CANARIES.saw("mcp", response.text)
            assert response.status_code < 500, (name, response.status_code, response.text[:300])
            for whole in (body, arguments):  # as the whole message too
                response = await http.post(f"{base}/mcp", content=whole, headers=session)
                assert response.status_code < 500, (name, response.text[:300])
        alive = await http.post(
            f"{base}/mcp",
            json={
                "jsonrpc": "2.0",
                "id": 9,
                "method": "tools/call",
                "params": {"name": "find_block", "arguments": {"query": "email"}},
            },
            headers=session,
        )
        assert alive.status_code == 200 and "block_list" in alive.text


@pytest.mark.slow
def test_cli_options_are_exit_2_with_one_error_line(
    home: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from blockpilot.credentials.crypto import KeyRing

    for name in list(os.environ):
        if name.startswith("BLOCKPILOT_"):
            monkeypatch.delenv(name)
    env = {"BLOCKPILOT_HOME": str(home), "BLOCKPILOT_ENCRYPTION_KEYS": KeyRing.generate_key()}
    runner = CliRunner()
    assert runner.invoke(cli_app, ["users", "create", "mallory"], env=env).exit_code == 0
    texts = {name: body.decode("utf-8", "surrogateescape") for name, body in MALFORMED.items()}
    for name, text in texts.items():
        if "\x00" in text:
            continue  # argv cannot carry NUL; covered through stdin below
        for args in (
            ["tool", "run_block", "--user", "mallory", "--args", text],
            ["run", "CalculatorBlock", "--user", "mallory", "--input", text],
            ["credentials", "add", "--user", "mallory", "--json", text],
        ):
            result = runner.invoke(cli_app, args, env=env)
            CANARIES.saw("cli", result.stdout + result.stderr)
            assert result.exit_code == 2, (
                name,
                args[0],
                result.exit_code,
                result.stdout,
                result.stderr,
            )
            assert "Traceback" not in result.stderr
            assert result.stderr.strip().startswith("Error: "), (name, result.stderr)
    for name, body in MALFORMED.items():  # the same through stdin, as bytes
        result = runner.invoke(
            cli_app, ["tool", "find_block", "--user", "mallory", "--args", "-"], env=env, input=body
        )
        assert result.exit_code == 2, (name, result.stdout, result.stderr)
    assert (
        runner.invoke(
            cli_app, ["--json", "credentials", "list", "--user", "mallory"], env=env
        ).stdout.strip()
        == "[]"
    )


# --------------------------------------------------------------------------- from upstream


async def test_upstream_json_with_lone_surrogates_is_no_500_and_the_record_is_final(
    open_pilot: Any,
) -> None:
    """Regression: a web page answering ``{"x": "\\ud800"}`` made the HTTP API answer 500
    (the response could not be encoded as UTF-8), and a large one left the execution record
    ``running`` for good (saving the cut output raised)."""
    upstream = LocalServer()
    try:
        upstream.route(
            "/small",
            reply(
                200,
                b'{"x": "\\ud800 lone", "\\udfff": ["\\udbff"]}',
                {"Content-Type": "application/json"},
            ),
        )
        upstream.route(
            "/large",
            reply(
                200,
                b'{"x": "' + b"a" * 120_000 + b'\\ud800"}',
                {"Content-Type": "application/json"},
            ),
        )
        pilot = await open_pilot(allowed=("127.0.0.1",))
        user, key = await pilot.users.create("mallory")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(pilot), raise_app_exceptions=False),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {key}"},
        ) as client:
            for path in ("/small", "/large"):
                response = await client.post(
                    "/api/v1/tools/run_block",
                    json={
                        "block_id": WEB_REQUEST_ID,
                        "input_data": {
                            "url": f"http://127.0.0.1:{upstream.port}{path}",
                            "method": "GET",
                        },
                    },
                )
                CANARIES.saw("http", response.text)
                assert response.status_code == 200, response.text
                data = response.json()
                assert data["type"] == "block_output", data
                if path == "/small":
                    assert "\ufffd" in json.dumps(data["outputs"], ensure_ascii=False)
                else:
                    assert data["output_truncated"] is True
        records = await pilot.executions.list(user.id)
        assert [r.status for r in records] == ["completed", "completed"]
        # The Python API gives the same, serialisable answer.
        direct = tool_json(
            await pilot.call_tool(
                "run_block",
                {
                    "block_id": WEB_REQUEST_ID,
                    "input_data": {
                        "url": f"http://127.0.0.1:{upstream.port}/small",
                        "method": "GET",
                    },
                },
                user_id=user.id,
            )
        )
        assert direct["outputs"]["response"] == [{"x": "\ufffd lone", "\ufffd": ["\ufffd"]}]
    finally:
        upstream.close()


async def test_a_block_output_that_is_not_unicode_is_shown_not_a_500(open_pilot: Any) -> None:
    """Whatever a (third-party) block yields, the response stays serialisable."""
    from blockpilot.tools.responses import BlockOutputResponse

    response = BlockOutputResponse(
        message="ok",
        block_id=CALCULATOR_ID,
        block_name="X",
        outputs={"out": ["a\ud800b", {"\udfff": 1}]},
        execution_id="e",
        session_id="s",
    )
    data = json.loads(response.to_json())
    assert data["outputs"] == {"out": ["a\ufffdb", {"\ufffd": 1}]}
    await asyncio.sleep(0)
