"""Server CPU per request: HTTP run_block against the bare endpoint, in one bench server.

Throughput on a shared machine moves with whatever else runs; the CPU the server process
spends per request served (utime + stime of the process over requests answered) moves far
less, because time spent waiting for a core is not counted. This loads ``bench.server``'s
blockpilot ``POST /api/v1/tools/run_block`` (read echo, with a session) and its bare
``POST /run`` in alternating ``wrk`` runs at one concurrency and reports, per repeat, both
CPU per request and requests/s, with their ratios (bare ÷ ours: the HTTP goal's direction).

``python -m bench.cpu_per_request [--repeats 3] [--duration 3] [--concurrency 16]
[--sessionless] [--secrets N] [--label NAME] [--out FILE]``; ``PYTHONPATH=/tmp/before/src:.``
measures another ``src/`` with the same bench. ``--secrets`` is how many credentials' secret
values the server holds in its secret registry (``bench.server``'s default: a small
deployment's); every access line is scrubbed of all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import temporary_home
from bench.http_bench import BenchServer
from bench.load import run_load
from bench.server import DEFAULT_SECRETS

_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of *pid* (all its threads) in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def measure(
    *,
    repeats: int,
    duration: float,
    concurrency: int,
    sessionless: bool,
    secrets: int = DEFAULT_SECRETS,
) -> dict[str, Any]:
    with temporary_home() as home:
        server = BenchServer(home, secrets=secrets)
        try:
            info = server.info
            api_headers = {
                "Authorization": f"Bearer {info['api_key']}",
                "Content-Type": "application/json",
            }
            if not sessionless:
                api_headers["X-Session-Id"] = info["session_id"]
            api_body = json.dumps({"block_id": info["block_id"], "input_data": {"text": "hi"}})
            targets = {
                "run_block": (server.url("api", "/api/v1/tools/run_block"), api_body, api_headers),
                "bare": (
                    server.url("bare", "/run"),
                    json.dumps({"text": "hi"}),
                    {"Content-Type": "application/json"},
                ),
            }
            with httpx.Client(timeout=10) as client:
                url, body, headers = targets["run_block"]
                answer = client.post(url, content=body, headers=headers).json()
                if answer.get("type") != "block_output":
                    raise RuntimeError(f"run_block over HTTP did not run: {answer}")
            for url, body, headers in targets.values():  # warm-up
                run_load(url, body, headers, concurrency=concurrency, duration=1.0)
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
            loads = [_load_average()]
            order = list(targets)
            for i in range(repeats):
                for name in order if i % 2 == 0 else list(reversed(order)):
                    url, body, headers = targets[name]
                    before = process_cpu_seconds(server.pid)
                    result = run_load(
                        url, body, headers, concurrency=concurrency, duration=duration
                    )
                    spent = process_cpu_seconds(server.pid) - before
                    requests = max(1, result["requests"])
                    runs[name].append(
                        {
                            "cpu_us_per_request": spent / requests * 1e6,
                            "requests_per_s": result["requests_per_s"],
                            "p99_us": result["p99_us"],
                            "non_2xx": result["non_2xx"],
                        }
                    )
                loads.append(_load_average())
        finally:
            server.stop()
    pairs = list(zip(runs["run_block"], runs["bare"], strict=True))
    cpu_ratios = [b["cpu_us_per_request"] / a["cpu_us_per_request"] for a, b in pairs]
    rps_ratios = [a["requests_per_s"] / b["requests_per_s"] for a, b in pairs]
    return {
        "concurrency": concurrency,
        "sessionless": sessionless,
        "secrets": secrets,
        "duration_s": duration,
        "load_average_1m": loads,
        "runs": runs,
        "cpu_us_per_request_median": {
            name: statistics.median(r["cpu_us_per_request"] for r in results)
            for name, results in runs.items()
        },
        "bare_cpu_over_ours": cpu_ratios,
        "throughput_ratio": rps_ratios,
        "throughput_ratio_median": statistics.median(rps_ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sessionless", action="store_true")
    parser.add_argument("--secrets", type=int, default=DEFAULT_SECRETS)
    parser.add_argument("--label", default="")
    parser.add_argument("--out", type=Path, help="append the result as one JSON line")
    args = parser.parse_args()
    started = time.time()
    result = measure(
        repeats=args.repeats,
        duration=args.duration,
        concurrency=args.concurrency,
        sessionless=args.sessionless,
        secrets=args.secrets,
    )
    result["label"] = args.label
    result["started"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
    result["pythonpath"] = os.environ.get("PYTHONPATH", "")
    line = json.dumps(result)
    if args.out is not None:
        with args.out.open("a") as handle:
            handle.write(line + "\n")
    cpu = result["cpu_us_per_request_median"]
    print(
        f"{args.label or 'run'}: load {result['load_average_1m'][0]:.1f}, "
        f"{args.secrets} secrets; CPU/request "
        f"run_block {cpu['run_block']:.0f} µs, bare {cpu['bare']:.0f} µs; "
        f"bare/ours CPU {[round(x, 2) for x in result['bare_cpu_over_ours']]}; "
        f"req/s ratio {[round(x, 2) for x in result['throughput_ratio']]}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
