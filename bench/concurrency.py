"""CPU per in-process ``run_block`` by concurrency: does a call cost more with company?

``python -m bench.concurrency [--calls 4000] [--levels 1,4,16,64] [--rounds 3] [--count]
[--block echo|write|api_key] [--json]`` runs the bench's read echo (or the echo declared
``write``, or the one that needs the user's API key) through ``pilot.call_tool("run_block",
...)`` with a session, as :mod:`bench.inprocess` does, from C tasks on one event loop, each
task one call per loop iteration, until ``--calls`` calls are made, for each level C in
alternating rounds. Per call it reports the process's CPU (all threads), the event loop
thread's and each other thread's (the SQLite writer, aiosqlite), context switches and CPython
collections by generation; at concurrency 1 also the median and mean of each call's own CPU
(a p50 latency leaves the tail out). With ``--count`` it also counts the SQL the direct SQLite
connections ran, by thread (``sqlite3`` trace callbacks set on connections opened during the
run: nothing in blockpilot is changed to count); counting costs CPU itself, so CPU is
measured without it.

CPU, not latency: on a shared machine time spent waiting for a core is not counted.
``PYTHONPATH=<tree>/src:.`` measures another ``src/`` with the same bench.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import json
import os
import re
import resource
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from bench.blocks import BenchApiKeyBlock, BenchEchoBlock, BenchWriteEchoBlock, bench_registry
from bench.common import open_pilot, tracing_sqlite

_TICKS = os.sysconf("SC_CLK_TCK")


def _thread_cpu_seconds() -> dict[int, float]:
    """utime + stime of each thread of this process, by native thread id."""
    out: dict[int, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / _TICKS
    return out


class _SQLCounts:
    """Statements of direct SQLite connections, by the thread that ran them."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.loop_thread = threading.get_ident()

    def trace(self, sql: str) -> None:
        where = "loop" if threading.get_ident() == self.loop_thread else "thread"
        word = sql.split(None, 1)[0].upper() if sql else ""
        if word in {"BEGIN", "COMMIT", "ROLLBACK", "INSERT", "UPDATE", "SELECT"}:
            self.counts[f"{where} {word}"] += 1


async def _level(call: Any, concurrency: int, calls: int, sql: _SQLCounts) -> dict[str, float]:
    """Make *calls* calls from *concurrency* tasks; CPU and counts per call."""
    left = calls
    each: list[int] | None = [] if concurrency == 1 else None

    async def worker() -> None:
        # Each call, then back to the loop: as requests do, every task makes one call per
        # loop iteration, so calls interleave (a call that never suspends would otherwise run
        # all of a worker's calls in one step, i.e. concurrency 1).
        nonlocal left
        while left > 0:
            left -= 1
            if each is None:
                await call()
            else:  # alone on the loop: each call's own CPU can be told apart
                started = time.thread_time_ns()
                await call()
                each.append(time.thread_time_ns() - started)
            await asyncio.sleep(0)

    gc_before = [s["collections"] for s in gc.get_stats()]
    sql.counts.clear()
    threads_before = _thread_cpu_seconds()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    cpu0, loop0, wall0 = time.process_time(), time.thread_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu1, loop1, wall1 = time.process_time(), time.thread_time(), time.perf_counter()
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    threads_after = _thread_cpu_seconds()
    gc_after = [s["collections"] for s in gc.get_stats()]
    loop_native = threading.get_native_id()
    names = {t.native_id: t.name for t in threading.enumerate()}
    by_name: collections.Counter[str] = collections.Counter()
    for tid, cpu in threads_after.items():
        if tid != loop_native:
            by_name[re.sub(r"\d+", "N", names.get(tid, "?"))] += cpu - threads_before.get(tid, 0.0)
    per = 1e6 / calls
    result = {
        "cpu_us": (cpu1 - cpu0) * per,
        "loop_cpu_us": (loop1 - loop0) * per,
        "other_threads_cpu_us": sum(by_name.values()) * per,  # /proc ticks: 10 ms each
        "wall_us": (wall1 - wall0) * per,
        "voluntary_switches": (usage_after.ru_nvcsw - usage_before.ru_nvcsw) / calls,
        "involuntary_switches": (usage_after.ru_nivcsw - usage_before.ru_nivcsw) / calls,
    }
    if each:
        each.sort()
        # The median call against the mean: what a p50 latency leaves out (docs/performance.md).
        result["call_loop_cpu_p50_us"] = each[len(each) // 2] / 1e3
        result["call_loop_cpu_mean_us"] = statistics.fmean(each) / 1e3
    for name, cpu in by_name.items():
        result[f"thread {name} cpu_us"] = cpu * per
    for generation, (after, before) in enumerate(zip(gc_after, gc_before, strict=True)):
        result[f"gc{generation}_per_1000"] = (after - before) * 1000 / calls
    for kind, n in sorted(sql.counts.items()):
        result[f"sql {kind}"] = n / calls
    return result


BLOCKS = {"echo": BenchEchoBlock, "write": BenchWriteEchoBlock, "api_key": BenchApiKeyBlock}
"""``--block``: the read echo, the echo declared ``write``, the echo needing the user's API key."""


async def run(
    *, calls: int, levels: list[int], rounds: int, count: bool, block: str = "echo"
) -> dict[str, Any]:
    sql = _SQLCounts()
    samples: dict[int, list[dict[str, float]]] = {c: [] for c in levels}
    with tracing_sqlite(lambda: sql.trace) if count else contextlib.nullcontext():
        async with open_pilot(bench_registry()) as pilot:
            user, _ = await pilot.users.create("bench")
            session = (await pilot.session_for(user.id, None)).session_id
            await pilot.add_credentials(
                user.id,
                {"provider": "openai", "type": "api_key", "api_key": "sk-bench-0123456789abcdef"},
            )
            args = {"block_id": BLOCKS[block].id, "input_data": {"text": "hi"}}

            async def call() -> None:
                await pilot.call_tool("run_block", args, user_id=user.id, session_id=session)

            response = await pilot.call_tool("run_block", args, user_id=user.id, session_id=session)
            if response.type != "block_output":
                raise RuntimeError(f"bench run_block did not run: {response.to_json()[:500]}")
            for c in levels:  # warm every level's shape once
                await _level(call, c, max(500, 8 * c), sql)
            for _ in range(rounds):
                for c in levels:
                    await asyncio.sleep(0.06)  # the previous level's deferred writes land
                    samples[c].append(await _level(call, c, calls, sql))
    return {
        "load_average_1m": os.getloadavg()[0],
        "block": block,
        "calls": calls,
        "levels": {
            str(c): {
                key: statistics.median(s[key] for s in runs if key in s)
                for key in sorted({k for s in runs for k in s})
            }
            | {"cpu_us_each": [round(s["cpu_us"], 1) for s in runs]}
            for c, runs in samples.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--levels", default="1,4,16,64")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", action="store_true", help="count SQL (costs CPU itself)")
    parser.add_argument("--block", choices=sorted(BLOCKS), default="echo")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    result = asyncio.run(
        run(
            calls=args.calls,
            levels=levels,
            rounds=args.rounds,
            count=args.count,
            block=args.block,
        )
    )
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"load average {result['load_average_1m']:.2f}, block {result['block']}, "
        f"{result['calls']} calls per level"
    )
    for c, row in result["levels"].items():
        print(f"concurrency {c}: (medians of {len(row['cpu_us_each'])} rounds)")
        for key, value in row.items():
            if isinstance(value, list):
                print(f"  {key:28} {value}")
            elif value:
                print(f"  {key:28} {value:10.3f}")


if __name__ == "__main__":
    main()
