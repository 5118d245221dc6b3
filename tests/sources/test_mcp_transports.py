"""MCP transports and session life: stdio servers started by command, the older HTTP+SSE
transport (chosen, or found by the spec's fallback), ``notifications/tools/list_changed``,
sessions ended upstream on ``Pilot.close`` and on idle expiry.

Servers: ``mcp-server-time`` (PyPI) run by command over stdio; SDK servers serving SSE
(``sse_app()``) or changing their tools; ``@modelcontextprotocol/server-everything`` (npm) in
``sse`` mode when Node is here.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from mcp.server.mcpserver import Context, MCPServer

from blockpilot.errors import InvalidInputError
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.sources.base import source_block_id
from blockpilot.sources.mcp._sessions import IDLE_SECONDS, session_pool
from blockpilot.sources.mcp._transports import parse_env
from blockpilot.storage.users import User
from blockpilot.testing import serve_asgi

from .mcp_servers import everything_command, everything_server

TIME_COMMAND = f"{shlex.quote(sys.executable)} -m mcp_server_time --local-timezone UTC"
ENV_CANARY = "operator-env-value-canary-51d0"


async def run(pilot: Pilot, user: User, block: str, data: dict[str, Any], chat: str) -> Any:
    return await pilot.call_tool(
        "run_block", {"block_id": block, "input_data": data}, user_id=user.id, session_id=chat
    )


async def chat_of(pilot: Pilot, user: User) -> str:
    return (await pilot.session_for(user.id, None)).session_id


def server_pids(marker: str) -> list[int]:
    """Live child processes of this test process whose command line contains *marker*."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                state, ppid = f.read().rsplit(")", 1)[1].split()[:2]
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(ppid) == os.getpid() and marker in command and state != "Z":
            found.append(int(entry))
    return found


async def until(check: Callable[[], bool], what: str) -> None:
    """Wait (bounded, no timing asserted) until *check* holds."""
    for _ in range(400):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


# -- stdio -----------------------------------------------------------------------------------


async def test_stdio_server_one_process_restarted_when_it_dies(
    pilot: Pilot, alice: User, bob: User
) -> None:
    with pytest.raises(InvalidInputError, match="per-user secret"):
        await pilot.sources.add_mcp("clock", command=TIME_COMMAND, auth="bearer")
    with pytest.raises(InvalidInputError, match="URL or its --command"):
        await pilot.sources.add_mcp("clock", "http://127.0.0.1:9/mcp", command=TIME_COMMAND)
    added = await pilot.sources.add_mcp(
        "clock", command=TIME_COMMAND, env=(f"BP_TEST_SETTING={ENV_CANARY}", "HOME")
    )
    assert added.to_dict() == {"name": "clock", "kind": "mcp", "blocks": 2, "skipped": []}
    shown = await pilot.sources.show("clock")
    assert shown["transport"] == "stdio" and shown["env"] == ["BP_TEST_SETTING", "HOME"]
    assert ENV_CANARY not in json.dumps(shown)
    await until(lambda: server_pids("mcp_server_time") == [], "the listing's process exits")

    now = source_block_id("clock", "tool:get_current_time")
    alice_chat, bob_chat = await chat_of(pilot, alice), await chat_of(pilot, bob)
    for user, chat, zone in ((alice, alice_chat, "Asia/Tokyo"), (bob, bob_chat, "Europe/Oslo")):
        ran = await run(pilot, user, now, {"timezone": zone}, chat)
        assert ran.type == "block_output", ran
        assert ran.outputs["result"][0]["timezone"] == zone
    [first] = server_pids("mcp_server_time")  # started lazily, one for every user

    os.kill(first, signal.SIGKILL)
    pool = session_pool()
    await until(lambda: pool.open_sessions() == 0, "the dead server's session is dropped")
    again = await run(pilot, alice, now, {"timezone": "America/Lima"}, alice_chat)
    assert again.type == "block_output", again
    [second] = server_pids("mcp_server_time")
    assert second != first

    await pilot.sources.aclose()
    assert server_pids("mcp_server_time") == []
    assert ENV_CANARY not in again.model_dump_json()


def test_env_values() -> None:
    assert parse_env(["A=1", "B", "A=2"]) == (("A", "2"), ("B", None))
    for bad in ("=x", "1A=b", "A-B=c"):
        with pytest.raises(InvalidInputError, match="--env"):
            parse_env([bad])


# -- HTTP+SSE ----------------------------------------------------------------------------------


def shouting_server() -> MCPServer:
    server = MCPServer("old")

    @server.tool()
    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()

    return server


async def test_sse_server_found_by_fallback_and_chosen(pilot: Pilot, alice: User) -> None:
    async with serve_asgi(shouting_server().sse_app()) as base:
        url = base + "/sse"
        # auto: the streamable POST to /sse is refused (4xx), so the older transport is used.
        added = await pilot.sources.add_mcp("old", url)
        assert added.to_dict()["blocks"] == 1
        assert (await pilot.sources.show("old"))["transport"] == "sse"
        shout = source_block_id("old", "tool:shout")
        ran = await run(pilot, alice, shout, {"text": "hi"}, await chat_of(pilot, alice))
        assert ran.type == "block_output", ran
        assert ran.outputs["result"] == [{"result": "HI"}]

        chosen = await pilot.sources.add_mcp("old2", url, transport="sse")
        assert chosen.to_dict()["blocks"] == 1
        with pytest.raises(InvalidInputError, match="Could not list the tools"):
            await pilot.sources.add_mcp("old3", url, transport="streamable-http")
        with pytest.raises(InvalidInputError, match="--transport"):
            await pilot.sources.add_mcp("old4", url, transport="websocket")
        await pilot.sources.aclose()  # while the server is still there to see it


@pytest.mark.skipif(
    everything_command("sse") is None,
    reason="Node (npx) is not installed: @modelcontextprotocol/server-everything cannot run",
)
async def test_server_everything_over_sse(pilot: Pilot, alice: User) -> None:
    async with everything_server("sse") as url:
        added = await pilot.sources.add_mcp("everything", url)
        assert added.to_dict()["blocks"] >= 5
        assert (await pilot.sources.show("everything"))["transport"] == "sse"
        echo = source_block_id("everything", "tool:echo")
        ran = await run(pilot, alice, echo, {"message": "over sse"}, await chat_of(pilot, alice))
        assert ran.type == "block_output", ran
        assert any("over sse" in t for t in ran.outputs["text"])
        await pilot.sources.aclose()


# -- tools/list_changed ------------------------------------------------------------------------


def shifting_server() -> MCPServer:
    server = MCPServer("shifty")

    @server.tool()
    def hello(name: str) -> str:
        """Greet someone."""
        return f"hello {name}"

    def farewell(name: str) -> str:
        """Say goodbye to someone."""
        return f"goodbye {name}"

    @server.tool()
    async def rotate(ctx: Context, confirm: bool) -> str:
        """Replace the hello tool with farewell, and tell the client."""
        server.remove_tool("hello")
        server.add_tool(farewell)
        await ctx.session.send_tool_list_changed()
        return "rotated"

    return server


async def test_list_changed_relists_and_a_vanished_tool_is_not_found(
    pilot: Pilot, alice: User, bob: User
) -> None:
    async with serve_asgi(shifting_server().streamable_http_app()) as base:
        added = await pilot.sources.add_mcp("shifty", base + "/mcp")
        assert added.to_dict()["blocks"] == 2
        hello = source_block_id("shifty", "tool:hello")
        chat = await chat_of(pilot, alice)
        assert (await run(pilot, alice, hello, {"name": "a"}, chat)).type == "block_output"
        rotate = source_block_id("shifty", "tool:rotate")
        assert (await run(pilot, alice, rotate, {"confirm": True}, chat)).type == "block_output"
        pool = session_pool()
        await until(lambda: "shifty" in pool.changed(), "the notification arrives")

        # Bob's next call re-lists first: hello is gone for everyone, farewell is there.
        gone = await run(pilot, bob, hello, {"name": "b"}, await chat_of(pilot, bob))
        assert gone.type == "error" and gone.error == "block_not_found", gone
        assert "shifty_hello" in gone.message and "no longer offers it" in gone.message
        assert pilot.catalog.registry.get(source_block_id("shifty", "tool:farewell"))
        assert (await pilot.sources.show("shifty"))["blocks"] == 2


# -- ending sessions upstream ------------------------------------------------------------------


def recording(app: Any, methods: list[str]) -> Any:
    """ASGI wrapper: the HTTP method of every request that reaches *app*."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            methods.append(scope["method"])
        await app(scope, receive, send)

    return wrapped


@pytest.fixture
async def recorded() -> AsyncIterator[tuple[str, list[str]]]:
    methods: list[str] = []
    async with serve_asgi(recording(shouting_server().streamable_http_app(), methods)) as base:
        yield base + "/mcp", methods


async def test_pilot_close_ends_upstream_sessions(
    pilot_settings: Settings, recorded: tuple[str, list[str]]
) -> None:
    url, methods = recorded
    pilot = await Pilot.open(pilot_settings)
    closed, deletes = False, 0
    try:
        await pilot.sources.add_mcp("loud", url)
        user, _ = await pilot.users.create("carol")
        shout = source_block_id("loud", "tool:shout")
        chat = (await pilot.session_for(user.id, None)).session_id
        assert (await run(pilot, user, shout, {"text": "a"}, chat)).type == "block_output"
        assert session_pool().open_sessions() == 1
        deletes = methods.count("DELETE")  # the listing's own session ended with a DELETE
        await pilot.close()
        closed = True
    finally:
        if not closed:
            await pilot.close()
    assert methods.count("DELETE") == deletes + 1  # the upstream saw the session end
    assert session_pool().open_sessions() == 0
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("mcp:")]


async def test_an_idle_session_is_ended_upstream(
    pilot: Pilot, alice: User, recorded: tuple[str, list[str]]
) -> None:
    url, methods = recorded
    await pilot.sources.add_mcp("loud", url)
    pool = session_pool()
    pool.idle_seconds = 0.2
    try:
        chat = await chat_of(pilot, alice)
        shout = source_block_id("loud", "tool:shout")
        assert (await run(pilot, alice, shout, {"text": "a"}, chat)).type == "block_output"
        deletes = methods.count("DELETE")  # the listing's own session ended with a DELETE
        await until(lambda: pool.open_sessions() == 0, "the idle session closes")
        assert methods.count("DELETE") == deletes + 1
    finally:
        pool.idle_seconds = IDLE_SECONDS


def forgetful(app: Any, state: dict[str, Any]) -> Any:
    """ASGI wrapper: once ``state["forget"]`` is set, a request in a session the server had
    before gets 404 (as from a server that restarted), and a new session works."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            session = dict(scope["headers"]).get(b"mcp-session-id")
            if session is not None and state["forget"] and session not in state["new"]:
                state["refused"] += 1
                await send({"type": "http.response.start", "status": 404, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            if session is not None and state["forget"]:
                state["new"].add(session)
            if session is None and state["forget"]:

                async def remember(message: dict[str, Any]) -> None:
                    if message["type"] == "http.response.start":
                        found = dict(message["headers"]).get(b"mcp-session-id")
                        if found:
                            state["new"].add(found)
                    await send(message)

                await app(scope, receive, remember)
                return
        await app(scope, receive, send)

    return wrapped


async def test_a_session_the_server_forgot_is_opened_again(pilot: Pilot, alice: User) -> None:
    state: dict[str, Any] = {"forget": False, "new": set(), "refused": 0}
    async with serve_asgi(forgetful(shouting_server().streamable_http_app(), state)) as base:
        await pilot.sources.add_mcp("loud", base + "/mcp")
        chat = await chat_of(pilot, alice)
        shout = source_block_id("loud", "tool:shout")
        assert (await run(pilot, alice, shout, {"text": "a"}, chat)).type == "block_output"
        state["forget"] = True
        again = await run(pilot, alice, shout, {"text": "b"}, chat)
        assert again.type == "block_output", again
        assert again.outputs["result"] == [{"result": "B"}]
        assert state["refused"] >= 1 and session_pool().open_sessions() == 1
        await pilot.sources.aclose()
