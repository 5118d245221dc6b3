"""``blockpilot serve --workers 2`` over real sockets: MCP sessions and limits across workers.

The server runs on the test's database (a SQLite file, or PostgreSQL in that pass) without
Redis. Every request goes on a fresh connection, so the kernel hands it to either worker.
Each request carries its own ``X-Request-Id``; the server's access line for it names the
``pid`` of the worker that took the connection, and each worker logs its worker id at
start-up, so the test knows which requests were forwarded to the worker owning their
session (docs/deployment.md#workers).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ResourceUpdatedNotification

from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from tests import bp_database

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:resources/(un)?subscribe is removed"),
]

SCRIPT = Path(sys.executable).with_name("blockpilot")
CALCULATOR_ID = "b1ab9b19-67a6-406d-abf5-2dba76d00c79"
CANARY = "canary-workers-7d1f3a"
PROTOCOL = "2025-06-18"
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": PROTOCOL}
WAIT_SECONDS = 30  # an upper bound for a notification to arrive, not a speed claim


@dataclass
class Workers:
    """A running ``serve --workers 2`` and what its log says."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    sent: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(request id, method, Mcp-Session-Id sent) of every request of :meth:`client`."""

    def records(self) -> list[dict[str, Any]]:
        text = self.log.read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def pid_of_worker(self) -> dict[str, int]:
        """worker id -> pid, from each worker's start-up line."""
        return {
            r["worker"]: r["pid"] for r in self.records() if r["message"] == "server worker ready"
        }

    def pid_of_request(self) -> dict[str, int]:
        """request id -> pid of the worker that took it, for every request of :meth:`client`
        (an access line is written when its response ends: an SSE stream's a little after
        its client left)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            took = {r["request_id"]: r["pid"] for r in self.records() if r.get("path")}
            missing = [sent for sent in self.sent if sent[0] not in took]
            if not missing:
                return took
            assert time.monotonic() < deadline, f"no access line for {missing}"
            time.sleep(0.05)

    def client(self, key: str | None = None, **options: Any) -> httpx.AsyncClient:
        """A client with no keep-alive (one connection per request), tagging each request."""

        async def tag(request: httpx.Request) -> None:
            request_id = uuid.uuid4().hex
            request.headers["X-Request-Id"] = request_id
            self.sent.append((request_id, request.method, request.headers.get("mcp-session-id")))

        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(
            base_url=self.url,
            headers=headers,
            limits=httpx.Limits(max_keepalive_connections=0),
            timeout=httpx.Timeout(WAIT_SECONDS),
            event_hooks={"request": [tag]},
            **options,
        )

    def wait_for_worker_ids(self) -> dict[str, int]:
        deadline = time.monotonic() + 60
        while len(pids := self.pid_of_worker()) < 2:
            assert time.monotonic() < deadline, self.log.read_text(errors="replace")
            time.sleep(0.05)
        return pids


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


StartWorkers = Callable[..., Workers]


@pytest.fixture
def start_workers(settings: Settings, tmp_path: Path) -> Iterator[StartWorkers]:
    started: list[Workers] = []

    def start(**env_extra: str) -> Workers:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPILOT_")}
        env.update(
            BLOCKPILOT_HOME=str(settings.home),
            BLOCKPILOT_ENCRYPTION_KEYS=settings.encryption_keys[0].get_secret_value(),
            BLOCKPILOT_RATE_LIMIT_PER_MINUTE="0",
            **bp_database.database_env(),
        )
        env.update(env_extra)
        port = _free_port()
        log = tmp_path / f"serve-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(SCRIPT), "serve", "--port", str(port), "--workers", "2"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=out,
            )
        workers = Workers(f"http://127.0.0.1:{port}", process, log)
        started.append(workers)
        deadline = time.monotonic() + 90  # a cold start on a busy machine
        while True:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                if httpx.get(f"{workers.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.05)
        workers.wait_for_worker_ids()
        return workers

    yield start
    for workers in started:
        workers.process.send_signal(signal.SIGTERM)
        try:
            assert workers.process.wait(60) == 0, workers.log.read_text(errors="replace")
        finally:
            if workers.process.poll() is None:
                workers.process.kill()
                workers.process.wait()


async def initialize(http: httpx.AsyncClient) -> str:
    """Open an MCP session with plain requests; its ``Mcp-Session-Id``."""
    opened = await http.post(
        "/mcp",
        headers=MCP_HEADERS,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL,
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"},
            },
        },
    )
    assert opened.status_code == 200, opened.text
    session_id = opened.headers["mcp-session-id"]
    done = await http.post(
        "/mcp",
        headers={**MCP_HEADERS, "Mcp-Session-Id": session_id},
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
    )
    assert done.status_code == 202, done.text
    return session_id


async def list_tools(http: httpx.AsyncClient, session_id: str) -> httpx.Response:
    return await http.post(
        "/mcp",
        headers={**MCP_HEADERS, "Mcp-Session-Id": session_id},
        json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    )


@asynccontextmanager
async def sdk_client(workers: Workers, key: str, inbox: Any = None) -> AsyncIterator[Client]:
    """The MCP SDK's streamable-HTTP client (2025 protocol: sessions and subscriptions)."""
    async with (
        workers.client(key) as http,
        Client(
            streamable_http_client(f"{workers.url}/mcp", http_client=http),
            mode="legacy",
            message_handler=inbox,
        ) as client,
    ):
        yield client


class Inbox:
    def __init__(self) -> None:
        self.updated: list[str] = []

    async def __call__(self, message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            self.updated.append(str(message.params.uri))

    async def wait_for(self, uri: str) -> None:
        with anyio.fail_after(WAIT_SECONDS):
            while uri not in self.updated:
                await anyio.sleep(0.02)


async def test_an_mcp_client_without_affinity_is_served_by_both_workers(
    pilot: Pilot, start_workers: StartWorkers
) -> None:
    """initialize, tools/list, tools/call, resources/subscribe and its notifications on the
    session's SSE stream, whichever worker each request reaches: requests for a session
    that another worker took are forwarded to it, SSE streams and DELETE included."""
    alice, alice_key = await pilot.users.create("alice")
    workspace = await pilot.workspaces.get_or_create_workspace(alice.id)
    notes = await pilot.workspaces.for_workspace(workspace).write("/notes.txt", "v1")
    workers = start_workers()
    worker_pid = workers.wait_for_worker_ids()
    forwarded_methods: set[str] = set()
    for attempt in range(12):  # until a session's SSE stream was forwarded too
        workers.sent.clear()
        inbox = Inbox()
        async with sdk_client(workers, alice_key, inbox) as client:
            tools = await client.list_tools()
            assert {"find_block", "run_block"} <= {t.name for t in tools.tools}
            for i in range(8):
                ran = await client.call_tool(
                    "run_block",
                    {
                        "block_id": CALCULATOR_ID,
                        "input_data": {"operation": "add", "a": i, "b": 1},
                    },
                )
                assert not ran.is_error, ran
                assert json.loads(ran.content[0].text)["outputs"] == {"result": [i + 1.0]}  # type: ignore[union-attr]
            await client.subscribe_resource(notes.uri)
            async with workers.client(alice_key) as api:
                put = await api.put(
                    "/api/v1/workspace/files/notes.txt", content=f"v{attempt + 2} {CANARY}"
                )
                assert put.status_code == 200, put.text
            await inbox.wait_for(notes.uri)
        session_ids = {sid for _, _, sid in workers.sent if sid}
        assert len(session_ids) == 1
        (session_id,) = session_ids
        owner, _, _ = session_id.partition(".")
        assert owner in worker_pid  # tagged with the worker that opened it
        took = workers.pid_of_request()
        forwarded_methods |= {
            method
            for request_id, method, sid in workers.sent
            if sid and took[request_id] != worker_pid[owner]
        }
        if {"POST", "GET", "DELETE"} <= forwarded_methods:
            break
    assert {"POST", "GET", "DELETE"} <= forwarded_methods, forwarded_methods
    mcp_lines = [r for r in workers.records() if r.get("path") == "/mcp"]
    assert {r["pid"] for r in mcp_lines} == set(worker_pid.values())  # both took requests
    assert all(r["status"] < 400 for r in mcp_lines), mcp_lines
    log = workers.log.read_text()
    assert alice_key not in log and "Traceback" not in log


async def test_another_users_key_cannot_use_a_session_on_any_worker(
    pilot: Pilot, start_workers: StartWorkers
) -> None:
    _, alice_key = await pilot.users.create("alice")
    _, bob_key = await pilot.users.create("bob")
    workers = start_workers()
    async with workers.client(alice_key) as alice, workers.client(bob_key) as bob:
        session_ids = {await initialize(alice) for _ in range(4)}
        for session_id in session_ids:
            for _ in range(4):  # fresh connections: both workers see each id
                refused = await list_tools(bob, session_id)
                assert refused.status_code == 404, refused.text
                assert "find_block" not in refused.text
                served = await list_tools(alice, session_id)
                assert served.status_code == 200 and "find_block" in served.text
            # Not a way around it either: the id without its worker tag, or another tag.
            owner, _, sdk_id = session_id.partition(".")
            for forged in (sdk_id, f"{'0' * 12}.{sdk_id}"):
                assert (await list_tools(bob, forged)).status_code == 404
            gone = await bob.delete("/mcp", headers={**MCP_HEADERS, "Mcp-Session-Id": session_id})
            assert gone.status_code == 404
            assert (await list_tools(alice, session_id)).status_code == 200  # still open
        no_key = await workers.client().post(
            "/mcp", headers={**MCP_HEADERS, "Mcp-Session-Id": next(iter(session_ids))}, json={}
        )
        assert no_key.status_code == 401
    tags = {sid.partition(".")[0] for sid in session_ids}
    assert tags <= set(workers.pid_of_worker())
    log = workers.log.read_text()
    assert alice_key not in log and bob_key not in log


async def test_a_killed_worker_is_replaced_and_its_sessions_are_not_found(
    pilot: Pilot, start_workers: StartWorkers
) -> None:
    """The parent only supervises: a worker killed under it is replaced by a new one (a new
    worker id), its sessions are 404 so the client re-initialises, and the new session works
    wherever it lands."""
    _, alice_key = await pilot.users.create("alice")
    workers = start_workers()
    worker_pid = workers.wait_for_worker_ids()
    assert workers.process.pid not in worker_pid.values()  # the parent serves nothing
    async with workers.client(alice_key) as alice:
        session_id = await initialize(alice)
        victim_id = session_id.partition(".")[0]
        os.kill(worker_pid[victim_id], signal.SIGKILL)
        deadline = time.monotonic() + WAIT_SECONDS
        while len(replaced := workers.pid_of_worker()) < 3:  # the new worker's ready line
            assert time.monotonic() < deadline, workers.log.read_text(errors="replace")
            time.sleep(0.05)
        for _ in range(4):
            gone = await list_tools(alice, session_id)
            assert gone.status_code == 404, gone.text
        fresh = await initialize(alice)
        assert fresh.partition(".")[0] in set(replaced) - {victim_id}
        assert (await list_tools(alice, fresh)).status_code == 200
    exited = [r for r in workers.records() if r["message"].startswith("server worker exited")]
    assert [(r["worker_pid"], r["exit"]) for r in exited] == [
        (worker_pid[victim_id], "signal SIGKILL")
    ]
    assert workers.process.poll() is None  # the server as a whole never stopped


async def test_a_rate_limit_is_one_budget_for_the_whole_server(
    pilot: Pilot, start_workers: StartWorkers
) -> None:
    """6 requests a minute per user, without Redis: 6 for the server, not 6 per worker;
    over HTTP and MCP alike."""
    _, alice_key = await pilot.users.create("alice")
    _, bob_key = await pilot.users.create("bob")
    workers = start_workers(BLOCKPILOT_RATE_LIMIT_PER_MINUTE="6")
    started = time.monotonic()
    async with workers.client(alice_key) as alice, workers.client(bob_key) as bob:
        statuses = [(await alice.get("/api/v1/sessions")).status_code for _ in range(20)]
        mcp = await alice.post("/mcp", headers=MCP_HEADERS, json={})
        bobs = [(await bob.get("/api/v1/sessions")).status_code for _ in range(6)]
    elapsed = time.monotonic() - started
    refills = int(elapsed / 10)  # one token every 10 s
    assert 6 <= statuses.count(200) <= 6 + refills, statuses
    assert set(statuses) == {200, 429}
    assert mcp.status_code == 429 or refills
    assert bobs == [200] * 6  # per user
    took = workers.pid_of_request()
    assert len({took[request_id] for request_id, _, _ in workers.sent}) == 2  # both workers
