"""Shared pieces: statistics, timing loops, the machine description, a throw-away Pilot."""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blockpilot.blocks.registry import BlockRegistry
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings

# A fixed test key (base64 of 32 bytes): the bench never touches the user's key file.
BENCH_KEY = "YmxvY2twaWxvdC1iZW5jaC1vbmx5LWtleS0wMDAwMDA="


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in [0, 1])."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


@dataclass
class Samples:
    """Latencies in seconds of one measured operation."""

    values: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.values)
        mean = statistics.fmean(ordered) if ordered else float("nan")
        return {
            "n": len(ordered),
            "p50_us": percentile(ordered, 0.50) * 1e6,
            "p99_us": percentile(ordered, 0.99) * 1e6,
            "mean_us": mean * 1e6,
            "ops_per_s": (1.0 / mean) if ordered and mean > 0 else float("nan"),
        }


async def measure_interleaved(
    variants: dict[str, Callable[[], Awaitable[Any]]],
    *,
    rounds: int,
    per_round: int,
    warmup: int,
) -> dict[str, Samples]:
    """Time each variant call by call, in alternating rounds (so drift and noisy neighbours
    hit every variant alike)."""
    samples = {name: Samples() for name in variants}
    for call in variants.values():
        for _ in range(warmup):
            await call()
    clock = time.perf_counter
    for _ in range(rounds):
        for name, call in variants.items():
            values = samples[name].values
            for _ in range(per_round):
                started = clock()
                await call()
                values.append(clock() - started)
    return samples


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "load_average_1m_at_start": load,
        "wrk": shutil.which("wrk") is not None,
    }


def rss_mib(pid: int) -> float | None:
    """Resident set size of process *pid* in MiB (Linux), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def bench_settings(home: Path, **overrides: Any) -> Settings:
    """Settings for a throw-away Pilot: its own home and SQLite file, no rate limits."""
    values: dict[str, Any] = {
        "home": home,
        "encryption_keys": (BENCH_KEY,),
        "rate_limit_per_minute": 0,
        "max_concurrent_runs_per_user": 0,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def tracing_sqlite(new_trace: Callable[[], Callable[[str], None]]) -> Iterator[None]:
    """Trace every SQLite connection opened meanwhile: each gets ``new_trace()`` as its
    statement callback (the direct writer's and reader's connections, and the engine's)."""
    original = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = original(*args, **kwargs)
        conn.set_trace_callback(new_trace())
        return conn

    sqlite3.connect = connect  # type: ignore[assignment]
    try:
        yield
    finally:
        sqlite3.connect = original


@contextmanager
def temporary_home(prefix: str = "blockpilot-bench-") -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@asynccontextmanager
async def open_pilot(registry: BlockRegistry, home: Path | None = None, **overrides: Any):  # type: ignore[no-untyped-def]
    """A Pilot on a fresh SQLite file with *registry*; closed and deleted afterwards."""
    if home is not None:
        pilot = await Pilot.open(bench_settings(home, **overrides), registry=registry)
        try:
            yield pilot
        finally:
            await pilot.close()
        return
    with temporary_home() as tmp:
        pilot = await Pilot.open(bench_settings(tmp, **overrides), registry=registry)
        try:
            yield pilot
        finally:
            await pilot.close()
