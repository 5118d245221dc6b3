"""CPU per execution record, the store alone: what a run's record costs, by concurrency.

``python -m bench.records [--records 4000] [--levels 1,16] [--rounds 5]`` writes execution
records through :class:`~blockpilot.storage.executions.ExecutionStore` on a fresh SQLite file
as the runner does, from C tasks on one event loop (each task one record per loop iteration,
as concurrent requests do), in alternating rounds:

* ``read``: a ``read`` block's record (``start(effect_free=True)``, ``finish``, ``flush``):
  one INSERT of the finished record;
* ``write``: a ``write`` block's (``start``, ``finish``, ``flush``): INSERT ``running``,
  then UPDATE;
* ``raw``: the floor, the same finished row by one ``INSERT`` on a plain ``sqlite3``
  connection in autocommit mode (concurrency 1 only).

It prints CPU per record (the process, all threads: the writer thread's checkpoints
included) and the event loop thread's. ``PYTHONPATH=<tree>/src:.`` measures another
``src/`` with the same bench.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.common import open_pilot
from blockpilot.storage.common import utcnow
from blockpilot.storage.executions import ExecutionRecord, ExecutionStore
from blockpilot.storage.tables import executions as table

_Write = Callable[[], Awaitable[None]]


def _record(user_id: str, session_id: str, n: int) -> ExecutionRecord:
    return ExecutionRecord(
        id=f"copilot-{session_id}-{os.urandom(8).hex()}",
        user_id=user_id,
        session_id=session_id,
        block_id="b3e0c7a2-0000-4b1e-8c00-00000000e001",
        block_name="BenchEchoBlock",
        status="running",
        started_at=utcnow(),
        input_redacted={"text": f"hi {n}"},
    )


def _finished(record: ExecutionRecord) -> None:
    """The runner's final state of a completed echo."""
    record.status = "completed"
    record.finished_at = utcnow()
    record.duration_ms = 0.012
    record.output_summary = {"outputs": ["text"]}


def writers(store: ExecutionStore, user_id: str, session_id: str) -> dict[str, _Write]:
    """One record per call, as the runner and ``Pilot.run_call`` write it."""
    counter = iter(range(10**9))

    async def read() -> None:
        record = _record(user_id, session_id, next(counter))
        await store.start(record, effect_free=True)
        _finished(record)
        store.finish(record)
        await store.flush()

    async def write() -> None:
        record = _record(user_id, session_id, next(counter))
        await store.start(record)
        _finished(record)
        store.finish(record)
        await store.flush()

    return {"read": read, "write": write}


def raw_writer(path: str, user_id: str, session_id: str) -> _Write:
    """The same finished row by one autocommit INSERT on a plain connection: the floor."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA synchronous=NORMAL")
    columns = (
        "id", "user_id", "session_id", "block_id", "block_name", "status", "is_dry_run",
        "started_at", "input_redacted", "credential_ids", "finished_at", "duration_ms",
        "output_summary",
    )  # fmt: skip
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    )

    async def raw() -> None:
        now = "2026-12-07 10:00:00.000000"
        conn.execute(
            sql,
            (
                f"copilot-{session_id}-{os.urandom(8).hex()}", user_id, session_id,
                "b3e0c7a2-0000-4b1e-8c00-00000000e001", "BenchEchoBlock", "completed", 0, now,
                '{"text":"hi"}', "[]", now, 0.012, '{"outputs":["text"]}',
            ),
        )  # fmt: skip

    return raw


async def _level(write: _Write, concurrency: int, records: int) -> tuple[float, float]:
    """CPU per record (process, loop thread) writing *records* from *concurrency* tasks."""
    left = records

    async def task() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await write()
            await asyncio.sleep(0)  # one record per task per loop iteration

    cpu, loop = time.process_time(), time.thread_time()
    await asyncio.gather(*(task() for _ in range(concurrency)))
    return (
        (time.process_time() - cpu) * 1e6 / records,
        (time.thread_time() - loop) * 1e6 / records,
    )


async def run(*, records: int, levels: list[int], rounds: int) -> dict[str, Any]:
    from bench.blocks import bench_registry

    async with open_pilot(bench_registry()) as pilot:
        user, _ = await pilot.users.create("bench")
        session = (await pilot.session_for(user.id, None)).session_id
        store = pilot.executions
        variants = {
            (name, c): write
            for name, write in writers(store, user.id, session).items()
            for c in levels
        }
        path = getattr(getattr(store, "_writer", None), "_path", None)
        if path is not None:
            variants[("raw", 1)] = raw_writer(path, user.id, session)
        for (_, c), write in variants.items():  # warm up
            await _level(write, c, 500)
        samples: dict[tuple[str, int], list[tuple[float, float]]] = {k: [] for k in variants}
        for _ in range(rounds):
            for key, write in variants.items():
                await store.flush()
                await asyncio.sleep(0.06)  # anything deferred has landed
                samples[key].append(await _level(write, key[1], records))
    return {
        "load_average_1m": os.getloadavg()[0],
        "records": records,
        "cpu_us": {
            f"{name} c{c}": {
                "process": round(statistics.median(s[0] for s in runs), 1),
                "loop_thread": round(statistics.median(s[1] for s in runs), 1),
                "process_each": [round(s[0], 1) for s in runs],
            }
            for (name, c), runs in samples.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--levels", default="1,16")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    result = asyncio.run(run(records=args.records, levels=levels, rounds=args.rounds))
    print(f"load average {result['load_average_1m']:.2f}, {result['records']} records per round")
    print("CPU µs per record (medians): process (all threads) / event loop thread  [each round]")
    for label, row in result["cpu_us"].items():
        print(
            f"  {label:10} {row['process']:7.1f} / {row['loop_thread']:7.1f}  {row['process_each']}"
        )


if __name__ == "__main__":
    main()
