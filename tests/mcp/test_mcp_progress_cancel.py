"""Long runs over MCP: progress notifications for a client that sends a progress token, and
``notifications/cancelled`` stopping the run, which is recorded as cancelled (docs/mcp.md).

Real MCP sessions of the SDK's client (JSON-RPC over memory streams, and streamable HTTP
on a real socket) against a block that waits until the test lets it finish.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from starlette.applications import Starlette
from starlette.routing import Route

from blockpilot.blocks.base import Block, BlockOutput
from blockpilot.blocks.registry import BlockRegistry
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, SchemaField
from blockpilot.mcp import MCPHttpApp, build_mcp_server
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.testing import serve_asgi

TIMEOUT = 30


class _Gate:
    event: anyio.Event
    entered: list[str]


GATE = _Gate()


class WaitBlock(Block):
    id = "0d2b8a47-6f3e-4b9c-9a1d-5e7f3c2b1a90"
    description = "Waits until the test lets it finish, then echoes its label."

    class Input(BlockSchemaInput):
        label: str = SchemaField(description="Any text")

    class Output(BlockSchemaOutput):
        label: str = SchemaField(description="The same text")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        GATE.entered.append(input_data.label)
        await GATE.event.wait()
        yield "label", input_data.label


def _run(label: str) -> dict[str, Any]:
    return {"block_id": WaitBlock.id, "input_data": {"label": label}}


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[tuple[Pilot, str, str]]:
    GATE.event, GATE.entered = anyio.Event(), []
    pilot = await Pilot.open(
        settings, registry=BlockRegistry(sources=[("test", lambda: [WaitBlock])])
    )
    try:
        alice, alice_key = await pilot.users.create("alice")
        await pilot.users.create("bob")
        yield pilot, alice.id, alice_key
    finally:
        GATE.event.set()
        await pilot.close()


@asynccontextmanager
async def _over_http(pilot: Pilot, key: str) -> AsyncIterator[Client]:
    mcp_http = MCPHttpApp(pilot, {key: (await pilot.users.get("alice")).id}.get)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with mcp_http.lifespan():
            yield

    app = Starlette(
        routes=[Route("/mcp", endpoint=mcp_http, methods=["GET", "POST", "DELETE"])],
        lifespan=lifespan,
    )
    async with (
        serve_asgi(app, timeout=TIMEOUT) as base,
        create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http), mode="legacy") as client,
    ):
        yield client


@asynccontextmanager
async def _in_process(pilot: Pilot, user_id: str, **options: Any) -> AsyncIterator[Client]:
    async with Client(build_mcp_server(pilot, user_id, **options), mode="legacy") as client:
        yield client


async def test_a_long_run_reports_progress_to_a_client_that_asks(
    world: tuple[Pilot, str, str],
) -> None:
    pilot, alice_id, _ = world
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))
        if len(seen) == 3:
            GATE.event.set()  # three notifications during the run: let it finish

    with anyio.fail_after(TIMEOUT):
        async with _in_process(pilot, alice_id, progress_interval=0.05) as client:
            result = await client.call_tool(
                "run_block", _run("slow"), progress_callback=on_progress
            )
            quick = await client.call_tool("find_block", {"query": "wait"})
    assert result.is_error is False
    assert result.structured_content["outputs"]["label"] == ["slow"]
    assert len(seen) >= 3
    progress = [p for p, _ in seen]
    assert progress == sorted(progress) and len(set(progress)) == len(progress)  # increasing
    assert all(m is not None and "run_block still running" in m for _, m in seen)
    assert quick.is_error is False


@pytest.mark.parametrize("transport", ["in-process", "http"])
async def test_cancelled_notification_stops_the_run_and_records_it_cancelled(
    world: tuple[Pilot, str, str], transport: str
) -> None:
    pilot, alice_id, alice_key = world
    connect: Callable[[], Any] = (
        (lambda: _in_process(pilot, alice_id))
        if transport == "in-process"
        else (lambda: _over_http(pilot, alice_key))
    )
    with anyio.fail_after(TIMEOUT):
        async with connect() as client:
            async with anyio.create_task_group() as tasks:
                call = anyio.CancelScope()

                async def run() -> None:
                    with call:
                        await client.call_tool("run_block", _run("stop me"))

                tasks.start_soon(run)
                while not GATE.entered:  # the block is running
                    await anyio.sleep(0.01)
                call.cancel()  # the client abandons the call: it sends notifications/cancelled
            records: list[Any] = []
            while not records or records[0].status == "running":
                await anyio.sleep(0.02)
                records = await pilot.executions.list(alice_id)
            # The session is still usable afterwards.
            after = await client.call_tool("find_block", {"query": "wait"})
    assert call.cancelled_caught
    assert [r.status for r in records] == ["cancelled"]
    assert GATE.event.is_set() is False  # stopped by the cancellation, not by finishing
    assert after.is_error is False
