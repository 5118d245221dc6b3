"""6. ``blockpilot serve --workers K``: run_block throughput at 1, 2 and N (the cores) workers.

Each K gets a fresh home (SQLite file), a user made with ``blockpilot users create --json``,
then ``blockpilot serve --workers K`` exactly as a user starts it (log level WARNING). Three
loads at concurrency 16 from ``wrk`` (or the httpx fallback), each after a warm-up:

* ``http``: ``POST /api/v1/tools/run_block`` of the built-in calculator block with one chat
  session, rate limits off;
* ``http_limited``: the same with the rate limit and tool-call cap on (high enough never to
  refuse), so every request spends from the limiter: in-process at K = 1, the shared
  SQLite file of the home at K > 1 (no Redis);
* ``mcp``: ``tools/call`` of run_block on one MCP session at ``/mcp``; with K workers about
  (K-1)/K of the connections reach a worker that does not hold the session and are
  forwarded to its owner over a Unix socket.

Reported: req/s and p50/p99 per K and load, the ratio to one worker, and the 1-minute load
average before each K. The load generator runs on the same machine, so on 2 cores it takes
one of them: scaling is bounded by the cores left to the servers. :func:`limiter_cost`
times one request's limiter work in process (rate + slot, in-process vs the shared file).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import BENCH_KEY, temporary_home
from bench.http_bench import _free_ports
from bench.load import run_load, tool_name

CALCULATOR_ID = "b1ab9b19-67a6-406d-abf5-2dba76d00c79"
SCRIPT = Path(sys.executable).with_name("blockpilot")


def _command(*args: str) -> list[str]:
    if SCRIPT.exists():
        return [str(SCRIPT), *args]
    return [sys.executable, "-c", "from blockpilot.cli.app import main; main()", *args]


MCP_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-06-18",
}


def _env(home: Path, *, limited: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPILOT_")}
    env.update(
        BLOCKPILOT_HOME=str(home),
        BLOCKPILOT_ENCRYPTION_KEYS=BENCH_KEY,
        BLOCKPILOT_RATE_LIMIT_PER_MINUTE="1000000" if limited else "0",
        BLOCKPILOT_MAX_CONCURRENT_RUNS_PER_USER="1000" if limited else "0",
        BLOCKPILOT_LOG_LEVEL="WARNING",
    )
    return env


def _mcp_session(url: str, key: str) -> str:
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {key}"}
    opened = httpx.post(
        f"{url}/mcp",
        headers=headers,
        json={
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        },
    )
    session = opened.headers["mcp-session-id"]
    httpx.post(
        f"{url}/mcp",
        headers={**headers, "Mcp-Session-Id": session},
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
    )
    return session


def _measure(workers: int, *, duration: float, warmup: float, load: str = "http") -> dict[str, Any]:
    with temporary_home() as home:
        env = _env(home, limited=load == "http_limited")
        created = subprocess.run(
            _command("--json", "users", "create", "bench"),
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        key = json.loads(created.stdout)["api_key"]
        port = _free_ports(1)[0]
        with (home / "serve.log").open("wb") as log:
            server = subprocess.Popen(
                _command("serve", "--port", str(port), "--workers", str(workers)),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((home / "serve.log").read_text()[-3000:])
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            body = json.dumps(
                {"block_id": CALCULATOR_ID, "input_data": {"operation": "add", "a": 2, "b": 3}}
            )
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            first = httpx.post(f"{url}/api/v1/tools/run_block", content=body, headers=headers)
            if first.json().get("type") != "block_output":
                raise RuntimeError(f"run_block did not run: {first.text[:500]}")
            headers["X-Session-Id"] = first.headers["X-Session-Id"]
            target = f"{url}/api/v1/tools/run_block"
            if load == "mcp":
                target = f"{url}/mcp"
                session = _mcp_session(url, key)
                headers = {**MCP_HEADERS, "Authorization": headers["Authorization"]}
                headers["Mcp-Session-Id"] = session
                arguments = {
                    "block_id": CALCULATOR_ID,
                    "input_data": json.loads(body)["input_data"],
                }
                body = json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 424242,
                        "method": "tools/call",
                        "params": {"name": "run_block", "arguments": arguments},
                    }
                ).replace("424242", "{id}")
                check = httpx.post(target, content=body.replace("{id}", "1"), headers=headers)
                if '"isError":false' not in check.text.replace(" ", ""):
                    raise RuntimeError(f"MCP run_block did not run: {check.text[:500]}")
            load_average = os.getloadavg()[0]
            run_load(target, body, headers, concurrency=16, duration=warmup)
            result = run_load(target, body, headers, concurrency=16, duration=duration)
            result["workers"] = workers
            result["load_average_1m_before"] = load_average
            return result
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def limiter_cost(calls: int = 20_000) -> dict[str, float]:
    """µs of one request's limiter work (a rate-limit token, then a tool-call slot taken and
    freed) in process: the in-process limiter vs the shared SQLite file of the home."""
    from blockpilot.limits import InProcessRateLimiter, MachineRateLimiter
    from blockpilot.workers import Worker

    async def per_call(limiter: Any) -> float:
        started = time.perf_counter()
        for i in range(calls):
            user = f"user{i % 100}"
            await limiter.acquire(user)
            async with limiter.concurrency(user):
                pass
        return (time.perf_counter() - started) / calls * 1e6

    with temporary_home() as home:
        worker = Worker.start(home)
        machine = MachineRateLimiter(10**6, 1000, worker=worker)
        try:
            memory_us = asyncio.run(per_call(InProcessRateLimiter(10**6, 1000)))
            machine_us = asyncio.run(per_call(machine))
        finally:
            machine.close()
            worker.close()
    return {"in_process_us": round(memory_us, 2), "shared_file_us": round(machine_us, 2)}


def run(*, quick: bool) -> dict[str, Any]:
    duration = 3.0 if quick else 5.0
    levels = sorted({1, 2, cores()})
    loads: dict[str, dict[str, Any]] = {}
    for load in ("http", "http_limited", "mcp"):
        rows = {str(k): _measure(k, duration=duration, warmup=1.0, load=load) for k in levels}
        one = rows["1"]["requests_per_s"]
        for row in rows.values():
            row["ratio_to_one"] = row["requests_per_s"] / one if one else float("nan")
        loads[load] = rows
    return {
        "load_tool": tool_name(),
        "cores": cores(),
        "duration_s": duration,
        "workers": loads["http"],
        "loads": loads,
        "limiter_cost": limiter_cost(),
    }
