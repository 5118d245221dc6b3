"""Tool calls dispatched past FastAPI's outer middleware answer exactly as the full stack does.

``create_app``'s app sends ``POST /api/v1/tools/{name}`` straight to its own middleware, the
exception middleware and the route (blockpilot.api.dispatch); an app with any other
middleware takes FastAPI's full stack for every request. The same requests to both must
give the same messages: status, every header in order, every body byte, and the same
access line.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from blockpilot.api import create_app
from blockpilot.api.dispatch import ToolCallDispatch
from blockpilot.api.routes.tools import send_tool_response
from blockpilot.limits import InProcessRateLimiter
from blockpilot.pilot import Pilot
from blockpilot.storage.users import User

CALCULATOR = "b1ab9b19-67a6-406d-abf5-2dba76d00c79"
KEY_CANARY = "bp-dispatch-canary-0123456789abcdef"


class PassThrough:
    """A middleware of the application's: the app then takes FastAPI's full stack."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _apps(pilot: Pilot, limiter: Any = lambda: None) -> tuple[FastAPI, FastAPI]:
    dispatched = create_app(pilot, limiter=limiter())
    full = create_app(pilot, limiter=limiter())
    full.add_middleware(PassThrough)  # type: ignore[arg-type]
    assert isinstance(dispatched.build_middleware_stack(), ToolCallDispatch)
    assert not isinstance(full.build_middleware_stack(), ToolCallDispatch)
    return dispatched, full


async def _call(
    app: FastAPI,
    method: str,
    path: str,
    headers: dict[str, str],
    chunks: list[bytes],
    *,
    declare_length: bool = True,
) -> list[dict[str, Any]]:
    """Every message the app sends for one request (the body in *chunks*)."""
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if declare_length:
        raw.append((b"content-length", str(sum(map(len, chunks))).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": raw,
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    pending = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks or [b""])
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _comparable(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages, with a run's own ids (new each run) taken out of a 200's body."""
    out = []
    for message in messages:
        message = dict(message)
        if message["type"] == "http.response.body" and messages[0]["status"] == 200:
            body = json.loads(message["body"])
            for volatile in ("execution_id", "duration_ms"):
                body.pop(volatile, None)
            message["body"] = body
        out.append(message)
    return out


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[Any, ...]]:
    fields = ("request_id", "method", "path", "status", "user_id")
    lines = [
        tuple(getattr(r, f) for f in fields)
        for r in caplog.records
        if r.name == "blockpilot.api.access"
    ]
    caplog.clear()
    return lines


async def test_tool_calls_answer_as_the_full_stack_does(
    pilot: Pilot, alice: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key = await pilot.users.create_api_key(alice.id)
    session = (await pilot.session_for(alice.id, None)).session_id
    dispatched, full = _apps(pilot)
    auth = {"Authorization": f"Bearer {key}", "X-Session-Id": session}
    as_json = {**auth, "Content-Type": "application/json"}
    run = json.dumps({"block_id": CALCULATOR, "input_data": {"operation": "add", "a": 1, "b": 2}})
    big = b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    requests: list[tuple[str, str, dict[str, str], list[bytes], bool]] = [
        ("POST", "/api/v1/tools/run_block", as_json, [run.encode()], True),
        ("POST", "/api/v1/tools/run_block", as_json, [run[:10].encode(), run[10:].encode()], False),
        ("POST", "/api/v1/tools/find_block", as_json, [b'{"query": "calculator"}'], True),
        ("POST", "/api/v1/tools/run_block", {}, [run.encode()], True),
        ("POST", "/api/v1/tools/run_block", {"Authorization": "Basic x y"}, [b"{}"], True),
        ("POST", "/api/v1/tools/run_block", {"Authorization": f"Bearer {KEY_CANARY}"}, [], True),
        ("POST", "/api/v1/tools/no_such_tool", as_json, [b"{}"], True),
        ("POST", "/api/v1/tools/run_block", as_json, [b"{not json"], True),
        ("POST", "/api/v1/tools/run_block", as_json, [b"[1, 2]"], True),
        ("POST", "/api/v1/tools/run_block", {**auth, "Content-Type": "text/plain"}, [b"{}"], True),
        ("POST", "/api/v1/tools/run_block", as_json, [big], True),
        ("POST", "/api/v1/tools/run_block", as_json, [big[:1000], big[1000:]], False),
        ("POST", "/api/v1/tools/run_block", {**as_json, "X-Session-Id": "s" * 129}, [b"{}"], True),
        ("POST", "/api/v1/tools/run_block", {**as_json, "X-Session-Id": "nope"}, [b"{}"], True),
        ("POST", "/api/v1/tools/run_block", {**as_json, "Idempotency-Key": "k1"}, [b"{}"], True),
        ("POST", "/api/v1/tools/run_block/", as_json, [b"{}"], True),
        ("GET", "/api/v1/tools/run_block", as_json, [], True),
        ("POST", "/api/v1/tools/", as_json, [b"{}"], True),
        ("GET", "/api/v1/tools", auth, [], True),
    ]
    for number, (method, path, headers, chunks, declare) in enumerate(requests):
        headers = {**headers, "X-Request-Id": f"dispatch-{number}"}
        answers = []
        for app in (dispatched, full):
            messages = await _call(app, method, path, headers, chunks, declare_length=declare)
            answers.append((_comparable(messages), _access_lines(caplog)))
        assert answers[0] == answers[1], (method, path)
        (start, *_), lines = answers[0]
        assert dict(start["headers"])[b"x-request-id"] == f"dispatch-{number}".encode()
        assert len(lines) == 1 and lines[0][3] == start["status"]
        assert KEY_CANARY not in caplog.text


async def test_rate_limits_answer_as_the_full_stack_does(pilot: Pilot, alice: User) -> None:
    key = await pilot.users.create_api_key(alice.id)
    dispatched, full = _apps(pilot, lambda: InProcessRateLimiter(per_minute=1, max_concurrent=1))
    headers = {"Authorization": f"Bearer {key}", "X-Request-Id": "limits"}
    answers = [
        [
            _comparable(await _call(app, "POST", "/api/v1/tools/find_block", headers, []))
            for _ in "ab"
        ]
        for app in (dispatched, full)
    ]
    assert [m[0]["status"] for m in answers[0]] == [200, 429]
    assert [m[0]["status"] for m in answers[1]] == [200, 429]
    assert answers[0][1] == answers[1][1]  # the 429, with its Retry-After


async def test_a_dispatched_call_gets_the_scope_the_router_gives_it(pilot: Pilot) -> None:
    app = create_app(pilot)
    dispatch = app.build_middleware_stack()
    assert isinstance(dispatch, ToolCallDispatch)
    seen: list[Scope] = []

    async def record(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(dict(scope))

    async def unused(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("not dispatched")

    recorder = ToolCallDispatch(unused, dispatch.route, app.router, record)
    scope = {"type": "http", "method": "POST", "path": "/api/v1/tools/run%20block", "app": app}
    await recorder(dict(scope), _no_receive, _no_send)
    match, child_scope = dispatch.route.matches(dict(scope))
    assert match is Match.FULL
    assert seen == [{**scope, **child_scope, "router": app.router}]


async def _no_receive() -> dict[str, Any]:
    raise AssertionError("no body read")


async def _no_send(message: dict[str, Any]) -> None:
    raise AssertionError("nothing sent")


async def test_the_tool_response_is_sent_as_starlettes_response_sends_it() -> None:
    body = json.dumps({"type": "block_output", "text": "é"}).encode()
    expected: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []

    async def collect_expected(message: dict[str, Any]) -> None:
        expected.append(message)

    async def collect(message: dict[str, Any]) -> None:
        sent.append(message)

    response = Response(body, media_type="application/json", headers={"X-Session-Id": "s-1"})
    await response({"type": "http"}, _no_receive, collect_expected)
    await send_tool_response(collect, body, "s-1")
    assert sent == expected
