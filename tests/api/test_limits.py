"""Per-user rate limit (every authenticated request) and tool-call concurrency cap: 429s."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from blockpilot.api import create_app
from blockpilot.blocks.base import Block, BlockOutput
from blockpilot.blocks.registry import BlockRegistry
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, SchemaField
from blockpilot.errors import RateLimitedError
from blockpilot.limits import InProcessRateLimiter
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.testing import serve_asgi
from tests.api.api_helpers import assert_error


class _Gate:
    """Holds GateBlock runs until a test opens it (one Event per test: events bind a loop)."""

    event: asyncio.Event
    entered: list[str]


GATE = _Gate()


class GateBlock(Block):
    id = "7c3d9e10-5a4b-4c2d-8e1f-0a9b8c7d6e51"
    description = "Waits until the test opens the gate, then echoes its label."

    class Input(BlockSchemaInput):
        label: str = SchemaField(description="Any text")

    class Output(BlockSchemaOutput):
        label: str = SchemaField(description="The same text")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        GATE.entered.append(input_data.label)
        await GATE.event.wait()
        yield "label", input_data.label


def run_gate(label: str) -> dict[str, Any]:
    return {"block_id": GateBlock.id, "input_data": {"label": label}}


@dataclass
class Service:
    pilot: Pilot
    alice_id: str
    alice: httpx.AsyncClient
    bob: httpx.AsyncClient
    anon: httpx.AsyncClient


MakeService = Callable[..., Awaitable[Service]]


@pytest.fixture
async def service(settings_factory: Callable[..., Settings]) -> AsyncIterator[MakeService]:
    """The API (in-process) over a Pilot with the given settings and the GateBlock."""
    GATE.event = asyncio.Event()
    GATE.entered = []
    pilots: list[Pilot] = []
    clients: list[httpx.AsyncClient] = []

    async def make(**overrides: Any) -> Service:
        registry = BlockRegistry(sources=[("test", lambda: [GateBlock])])
        pilot = await Pilot.open(settings_factory(**overrides), registry=registry)
        pilots.append(pilot)
        alice, alice_key = await pilot.users.create("alice")
        _, bob_key = await pilot.users.create("bob")
        app = create_app(pilot)

        def client(key: str | None) -> httpx.AsyncClient:
            made = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://testserver",
                headers={"Authorization": f"Bearer {key}"} if key else {},
            )
            clients.append(made)
            return made

        return Service(pilot, alice.id, client(alice_key), client(bob_key), client(None))

    yield make
    GATE.event.set()
    for made in clients:
        await made.aclose()
    for pilot in pilots:
        await pilot.close()


# -- the in-process limiter ---------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_bucket_allows_a_minutes_budget_then_refills_at_the_steady_rate() -> None:
    clock = FakeClock()
    limiter = InProcessRateLimiter(per_minute=6, max_concurrent=1, clock=clock)
    assert [(await limiter.acquire("alice")).allowed for _ in range(6)] == [True] * 6
    refused = await limiter.acquire("alice")
    assert not refused.allowed and refused.retry_after == pytest.approx(10.0)
    clock.now += 9.9
    assert not (await limiter.acquire("alice")).allowed
    clock.now += 0.2  # 6 per minute: one token every 10 s
    assert (await limiter.acquire("alice")).allowed
    assert not (await limiter.acquire("alice")).allowed
    assert (await limiter.acquire("bob")).allowed  # per user
    clock.now += 3600  # a long pause refills the bucket only up to one minute's budget
    assert [(await limiter.acquire("alice")).allowed for _ in range(7)] == [True] * 6 + [False]


async def test_idle_users_buckets_are_dropped() -> None:
    clock = FakeClock()
    limiter = InProcessRateLimiter(per_minute=60, max_concurrent=1, clock=clock)
    for user in ("alice", "bob", "carol"):
        await limiter.acquire(user)
    clock.now += 61
    await limiter.acquire("dave")
    assert set(limiter._buckets) == {"dave"}


async def test_concurrency_slots_are_per_user_and_freed_on_error() -> None:
    limiter = InProcessRateLimiter(per_minute=60, max_concurrent=2)
    async with limiter.concurrency("alice"), limiter.concurrency("alice"):
        assert limiter.running("alice") == 2
        with pytest.raises(RateLimitedError) as refused:
            async with limiter.concurrency("alice"):
                pytest.fail("a third slot was granted")
        assert refused.value.retry_after == 1 and refused.value.code == "rate_limited"
        async with limiter.concurrency("bob"):
            assert limiter.running("bob") == 1
    with pytest.raises(ValueError):
        async with limiter.concurrency("alice"):
            raise ValueError("the tool call failed")
    assert limiter.running("alice") == 0 and limiter._running == {}


async def test_zero_turns_a_limit_off() -> None:
    limiter = InProcessRateLimiter(per_minute=0, max_concurrent=0)
    assert all([(await limiter.acquire("alice")).allowed for _ in range(1000)])
    async with limiter.concurrency("alice"), limiter.concurrency("alice"):
        pass


def test_rate_limited_error_rounds_retry_after_up_to_whole_seconds() -> None:
    assert RateLimitedError("slow down", retry_after=0.01).retry_after == 1
    assert RateLimitedError("slow down", retry_after=19.2).retry_after == 20


# -- over HTTP -------------------------------------------------------------------------------


async def test_over_the_per_minute_budget_is_429_with_retry_after(service: MakeService) -> None:
    svc = await service(rate_limit_per_minute=3)
    for _ in range(3):
        assert (await svc.alice.get("/api/v1/sessions")).status_code == 200
    refused = await svc.alice.post("/api/v1/tools/find_block", json={"query": "gate"})
    error = assert_error(refused, 429, "rate_limited")
    retry_after = refused.headers["retry-after"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 20  # 3/min: a token per 20 s
    assert error["details"] == {"retry_after_seconds": int(retry_after)}
    assert "rate limit" in str(error["message"])
    assert refused.headers["x-request-id"]
    # Nothing ran: the refused tool call created no session.
    assert await svc.pilot.sessions.list(svc.alice_id) == []


async def test_limits_are_per_user(service: MakeService) -> None:
    svc = await service(rate_limit_per_minute=2)
    for _ in range(2):
        assert (await svc.alice.get("/api/v1/blocks")).status_code == 200
    assert_error(await svc.alice.get("/api/v1/blocks"), 429, "rate_limited")
    for _ in range(2):
        assert (await svc.bob.get("/api/v1/blocks")).status_code == 200
    assert_error(await svc.bob.get("/api/v1/blocks"), 429, "rate_limited")


async def test_unauthenticated_requests_and_probes_spend_no_budget(service: MakeService) -> None:
    svc = await service(rate_limit_per_minute=1)
    for _ in range(5):
        assert_error(await svc.anon.get("/api/v1/blocks"), 401, "auth_required")
        assert (await svc.alice.get("/healthz")).status_code == 200
    assert (await svc.alice.get("/api/v1/blocks")).status_code == 200
    assert_error(await svc.alice.get("/api/v1/blocks"), 429, "rate_limited")
    # Over the limit, a bad key is still told it is bad (authentication comes first).
    assert_error(await svc.anon.get("/api/v1/blocks"), 401, "auth_required")


async def test_tool_calls_over_the_concurrency_cap_are_429(service: MakeService) -> None:
    svc = await service(max_concurrent_runs_per_user=2)
    running = [
        asyncio.create_task(svc.alice.post("/api/v1/tools/run_block", json=run_gate(f"a{i}")))
        for i in range(2)
    ]
    async with asyncio.timeout(10):
        while len(GATE.entered) < 2:
            await asyncio.sleep(0.01)

    refused = await svc.alice.post("/api/v1/tools/run_block", json=run_gate("a3"))
    error = assert_error(refused, 429, "rate_limited")
    assert refused.headers["retry-after"] == "1"
    assert error["details"] == {"max_concurrent_runs": 2, "retry_after_seconds": 1}
    assert sorted(GATE.entered) == ["a0", "a1"]  # the refused call never reached the block
    # Only tool calls hold slots; other requests of the same user go on.
    assert (await svc.alice.get("/api/v1/sessions")).status_code == 200
    # Bob has his own slots.
    bob = asyncio.create_task(svc.bob.post("/api/v1/tools/run_block", json=run_gate("b0")))
    async with asyncio.timeout(10):
        while "b0" not in GATE.entered:
            await asyncio.sleep(0.01)

    GATE.event.set()
    for response in [*await asyncio.gather(*running), await bob]:
        assert response.status_code == 200
        assert response.json()["type"] == "block_output"
    again = await svc.alice.post("/api/v1/tools/run_block", json=run_gate("a4"))
    assert again.json()["outputs"] == {"label": ["a4"]}


async def test_a_failed_tool_call_frees_its_slot(service: MakeService) -> None:
    svc = await service(max_concurrent_runs_per_user=1)
    GATE.event.set()
    for _ in range(3):
        unknown = await svc.alice.post(
            "/api/v1/tools/run_block", json=run_gate("x"), headers={"X-Session-Id": "nope"}
        )
        assert_error(unknown, 404, "session_not_found")
    ok = await svc.alice.post("/api/v1/tools/run_block", json=run_gate("x"))
    assert ok.status_code == 200 and ok.json()["type"] == "block_output"


async def test_429_is_documented_for_every_authenticated_route(service: MakeService) -> None:
    svc = await service()
    paths = (await svc.anon.get("/openapi.json")).json()["paths"]
    checked = 0
    for path, item in paths.items():
        for method, operation in item.items():
            if "security" in operation:
                assert "429" in operation["responses"], (method, path)
                checked += 1
    assert checked >= 15


# -- MCP over HTTP shares the user's budget and tool-call slots -----------------------------

_MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _rpc(method: str, params: dict[str, Any] | None = None, id: int | None = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if id is not None:
        message["id"] = id
    if params is not None:
        message["params"] = params
    return message


def _mcp_result(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC message of a streamable-HTTP answer (SSE or JSON)."""
    assert response.status_code == 200, response.text
    text = response.text
    if response.headers["content-type"].startswith("text/event-stream"):
        text = next(line[6:] for line in text.splitlines() if line.startswith("data: "))
    message: dict[str, Any] = json.loads(text)
    return message


@asynccontextmanager
async def _served(service: Service) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Alice's MCP client (session open) and API client of ONE app on a real socket (MCP
    needs the app's lifespan; the limiter belongs to the app)."""
    key = {"Authorization": service.alice.headers["authorization"]}
    client_info = {"name": "t", "version": "0"}
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": client_info}
    async with (
        serve_asgi(create_app(service.pilot)) as base,
        httpx.AsyncClient(base_url=base, headers={**key, **_MCP_HEADERS}, timeout=20) as mcp,
        httpx.AsyncClient(base_url=base, headers=key, timeout=20) as api,
    ):
        init = await mcp.post("/mcp", json=_rpc("initialize", hello))
        mcp.headers["mcp-session-id"] = init.headers["mcp-session-id"]
        mcp.headers["mcp-protocol-version"] = "2025-06-18"
        initialized = await mcp.post("/mcp", json=_rpc("notifications/initialized", id=None))
        assert initialized.status_code == 202
        yield mcp, api


async def test_mcp_requests_spend_the_same_rate_limit_budget(service: MakeService) -> None:
    svc = await service(rate_limit_per_minute=3)
    async with _served(svc) as (mcp, api):  # initialize + initialized: 2 of 3
        assert _mcp_result(await mcp.post("/mcp", json=_rpc("tools/list", id=2)))["result"]["tools"]
        refused = await mcp.post("/mcp", json=_rpc("tools/list", id=3))
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "rate_limited"
        assert refused.headers["retry-after"].isdigit()
        # One budget per user, whichever door: the HTTP API is over the limit too.
        assert_error(await api.get("/api/v1/sessions"), 429, "rate_limited")


async def test_mcp_tool_calls_hold_the_users_tool_call_slots(service: MakeService) -> None:
    svc = await service(max_concurrent_runs_per_user=1)
    call = _rpc("tools/call", {"name": "run_block", "arguments": run_gate("m0")}, id=2)
    async with _served(svc) as (mcp, api):
        running = asyncio.create_task(mcp.post("/mcp", json=call))
        async with asyncio.timeout(10):
            while "m0" not in GATE.entered:
                await asyncio.sleep(0.01)
        second = _rpc("tools/call", {"name": "run_block", "arguments": run_gate("m1")}, id=3)
        refused = _mcp_result(await mcp.post("/mcp", json=second))["result"]
        assert refused["isError"] is True
        assert refused["structuredContent"]["code"] == "rate_limited"
        # The HTTP API sees the same slot taken.
        assert_error(
            await api.post("/api/v1/tools/run_block", json=run_gate("h0")), 429, "rate_limited"
        )
        assert GATE.entered == ["m0"]  # neither refused call reached the block
        GATE.event.set()
        done = _mcp_result(await running)["result"]
        assert done["isError"] is False and done["structuredContent"]["outputs"] == {
            "label": ["m0"]
        }
