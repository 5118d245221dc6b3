"""Load generators, each in its own process: ``wrk`` when installed, else an httpx client.

Both send the same POST (body and headers) over keep-alive connections at a fixed
concurrency for a fixed time and report requests/s and latency percentiles. A ``{id}`` in
the body is replaced by a request counter (JSON-RPC ids must differ while in flight).

``python -m bench.load --url URL --concurrency N --duration S --body JSON [--header K:V]...``
is the httpx fallback; it prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_LUA = r"""
wrk.method = "POST"
local template = %(body)s
%(headers)s
local counter = 0
request = function()
  counter = counter + 1
  local body = string.gsub(template, "{id}", tostring(counter))
  return wrk.format(nil, nil, nil, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nBENCH_JSON {"requests": %%d, "duration_s": %%.6f, "errors": %%d, "non_2xx": %%d, ' ..
    '"p50_us": %%d, "p99_us": %%d, "mean_us": %%.1f}\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def tool_name() -> str:
    return "wrk" if shutil.which("wrk") else "httpx"


def run_load(
    url: str,
    body: str,
    headers: dict[str, str],
    *,
    concurrency: int,
    duration: float,
) -> dict[str, Any]:
    """Load *url* from a separate process; requests/s and latency percentiles."""
    if shutil.which("wrk"):
        return _run_wrk(url, body, headers, concurrency=concurrency, duration=duration)
    command = [
        sys.executable,
        "-m",
        "bench.load",
        "--url",
        url,
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration),
        "--body",
        body,
    ]
    for key, value in headers.items():
        command += ["--header", f"{key}:{value}"]
    root = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), root) if p)
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=duration + 120,
        check=True,
        env={**os.environ, "PYTHONPATH": path},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run_wrk(
    url: str, body: str, headers: dict[str, str], *, concurrency: int, duration: float
) -> dict[str, Any]:
    lines = "\n".join(
        f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items()
    )
    script = _LUA % {"body": _lua_string(body), "headers": lines}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
        path = handle.name
    try:
        seconds = max(1, round(duration))
        done = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{concurrency}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                path,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
    finally:
        os.unlink(path)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            raw = json.loads(line.removeprefix("BENCH_JSON "))
            break
    else:
        raise RuntimeError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    raw["requests_per_s"] = raw["requests"] / raw["duration_s"] if raw["duration_s"] else 0.0
    raw["tool"] = "wrk"
    raw["concurrency"] = concurrency
    return raw


# -- the httpx fallback (runs in its own process) ------------------------------------------


async def _httpx_load(
    url: str, body: str, headers: dict[str, str], concurrency: int, duration: float
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    non_2xx = 0
    counter = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        deadline = time.perf_counter() + duration
        started = time.perf_counter()

        async def worker() -> None:
            nonlocal errors, non_2xx, counter
            while time.perf_counter() < deadline:
                counter += 1
                payload = body.replace("{id}", str(counter))
                t0 = time.perf_counter()
                try:
                    response = await client.post(url, content=payload, headers=headers)
                    await response.aread()
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                if response.status_code >= 300:
                    non_2xx += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e6

    return {
        "requests": len(latencies),
        "duration_s": elapsed,
        "errors": errors,
        "non_2xx": non_2xx,
        "p50_us": pct(0.50),
        "p99_us": pct(0.99),
        "mean_us": (sum(latencies) / len(latencies) * 1e6) if latencies else float("nan"),
        "requests_per_s": len(latencies) / elapsed if elapsed else 0.0,
        "tool": "httpx",
        "concurrency": concurrency,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--body", required=True)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    headers = dict(h.split(":", 1) for h in args.header)
    result = asyncio.run(_httpx_load(args.url, args.body, headers, args.concurrency, args.duration))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
