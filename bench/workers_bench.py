"""6. ``blockpilot serve --workers K``: run_block throughput at 1, 2 and N (the cores) workers.

Each K gets a fresh home (SQLite file), a user made with ``blockpilot users create --json``,
then ``blockpilot serve --workers K`` exactly as a user starts it (rate limits off, log level
WARNING). Load: ``POST /api/v1/tools/run_block`` of the built-in calculator block, with one
chat session, at concurrency 16, from ``wrk`` (or the httpx fallback). Reported: req/s and
p50/p99 per K, and the ratio to one worker. The load generator runs on the same machine, so
on 2 cores it takes one of them: scaling is bounded by the cores left to the servers.
"""

from __future__ import annotations

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


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPILOT_")}
    env.update(
        BLOCKPILOT_HOME=str(home),
        BLOCKPILOT_ENCRYPTION_KEYS=BENCH_KEY,
        BLOCKPILOT_RATE_LIMIT_PER_MINUTE="0",
        BLOCKPILOT_MAX_CONCURRENT_RUNS_PER_USER="0",
        BLOCKPILOT_LOG_LEVEL="WARNING",
    )
    return env


def _measure(workers: int, *, duration: float, warmup: float) -> dict[str, Any]:
    with temporary_home() as home:
        env = _env(home)
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
            run_load(target, body, headers, concurrency=16, duration=warmup)
            result = run_load(target, body, headers, concurrency=16, duration=duration)
            result["workers"] = workers
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


def run(*, quick: bool) -> dict[str, Any]:
    duration = 3.0 if quick else 5.0
    levels = sorted({1, 2, cores()})
    rows = {str(k): _measure(k, duration=duration, warmup=1.0) for k in levels}
    one = rows["1"]["requests_per_s"]
    for row in rows.values():
        row["ratio_to_one"] = row["requests_per_s"] / one if one else float("nan")
    return {"load_tool": tool_name(), "cores": cores(), "duration_s": duration, "workers": rows}
