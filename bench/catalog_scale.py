"""8. Catalogue scale: 10,000 and 100,000 generated blocks with a varied vocabulary.

Each case runs in a fresh child process (``python -m bench.catalog_scale CASE SIZE``), so its
memory and start-up are its own:

* ``classes`` — *SIZE* blocks of :mod:`bench.catalog_gen`, each a ``Block`` subclass with its
  own ``Input``/``Output`` models, plus the built-in blocks, in one ``BlockRegistry``.
  Measured: defining the classes; ``Pilot.open`` + the first ``find_block`` (registry load
  and checks, search index build); find_block p50/p95/p99 over the labelled queries;
  recall@1/@5/@10 by query kind; RSS growth per 1,000 blocks.
* ``sources`` — the same blocks as stored OpenAPI sources (one per service, about 230,
  built from rows without per-block classes, as ``blockpilot sources add`` stores them).
  Measured: ``Pilot.open`` with those sources against ``Pilot.open`` without (registry
  start-up), the first search, find_block latency and recall, RSS per 1,000 blocks.

Where ``Pilot.open`` builds the search index in the background, both cases wait for it and
report its CPU time and the wall time from the end of open to a ready index.

Latency is the whole tool call, ``pilot.call_tool("find_block", {"query": ...})``, after one
warm-up pass. A query counts as found at k when any block it lists is among the first k.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import find
from bench.blocks import bench_registry
from bench.catalog_gen import (
    block_classes,
    generate,
    labelled_queries,
    openapi_documents,
    source_block_name,
)
from bench.common import Samples, bench_settings, percentile, rss_mib, temporary_home
from blockpilot.pilot import Pilot
from blockpilot.sources.base import SourceOptions, source_kind
from blockpilot.storage.sources import SourceRecord

QUERIES = 600
BASE_URL = "https://api.example.com"  # never called: find_block only


def _queries(specs: list[Any]) -> list[dict[str, Any]]:
    """The generated labelled queries, and those of ``bench/queries.json`` (built-in blocks,
    now among many more) as kind ``builtin``."""
    builtin = [{**q, "kind": "builtin"} for q in find.labelled_queries()]
    return labelled_queries(specs, QUERIES) + builtin


def _rss() -> float:
    gc.collect()
    return rss_mib(os.getpid()) or float("nan")


async def _find(pilot: Pilot, user_id: str, session: str, query: str) -> list[str]:
    response = await pilot.call_tool(
        "find_block", {"query": query}, user_id=user_id, session_id=session
    )
    return [b.name for b in getattr(response, "blocks", [])]


async def _index_ready(pilot: Pilot) -> dict[str, Any]:
    """Wait for the index built in the background since ``Pilot.open`` (where the code has
    one; before, the first search built it)."""
    wait = getattr(pilot.catalog, "background_build_done", None)
    if wait is None:
        return {}
    started = time.perf_counter()
    await wait()
    return {
        "index_ready_after_open_s": time.perf_counter() - started,
        "index_build_cpu_s": pilot.catalog.build_cpu_seconds,
    }


async def _search_measures(
    pilot: Pilot, labelled: list[dict[str, Any]], passes: int
) -> dict[str, Any]:
    user, _ = await pilot.users.create("bench")
    session = (await pilot.session_for(user.id, None)).session_id
    first, cpu = time.perf_counter(), time.process_time()
    await _find(pilot, user.id, session, labelled[0]["query"])
    first_s = time.perf_counter() - first
    first_cpu_s = time.process_time() - cpu
    hits: dict[str, dict[int, int]] = defaultdict(lambda: {1: 0, 5: 0, 10: 0})
    totals: dict[str, int] = defaultdict(int)
    misses = []
    for entry in labelled:  # the warm-up pass, and quality
        got = await _find(pilot, user.id, session, entry["query"])
        relevant = set(entry["relevant"])
        totals[entry["kind"]] += 1
        for k in (1, 5, 10):
            hits[entry["kind"]][k] += any(n in relevant for n in got[:k])
        if not any(n in relevant for n in got[:5]) and len(misses) < 20:
            misses.append({"query": entry["query"], "relevant": entry["relevant"][:3],
                           "got": got[:3]})  # fmt: skip
    samples = Samples()
    cpu: list[float] = []  # this process's CPU time per call: less moved by a busy machine
    by_kind: dict[str, list[float]] = defaultdict(list)
    for _ in range(passes):
        for entry in labelled:
            started, cpu_started = time.perf_counter(), time.process_time()
            await _find(pilot, user.id, session, entry["query"])
            elapsed = time.perf_counter() - started
            cpu.append(time.process_time() - cpu_started)
            samples.values.append(elapsed)
            by_kind[entry["kind"]].append(elapsed)
    cpu.sort()
    ordered = sorted(samples.values)
    n = len(labelled)
    return {
        "first_search_s": first_s,
        "first_search_cpu_s": first_cpu_s,
        "queries": n,
        **{f"recall_at_{k}": sum(h[k] for h in hits.values()) / n for k in (1, 5, 10)},
        "recall_by_kind": {
            kind: {f"at_{k}": hits[kind][k] / totals[kind] for k in (1, 5, 10)}
            for kind in sorted(totals)
        },
        "p50_us_by_kind": {
            kind: percentile(sorted(values), 0.5) * 1e6 for kind, values in sorted(by_kind.items())
        },
        "not_in_top5": misses,
        **samples.summary(),
        "p95_us": percentile(ordered, 0.95) * 1e6,
        "cpu_p50_us": percentile(cpu, 0.5) * 1e6,
        "cpu_p95_us": percentile(cpu, 0.95) * 1e6,
    }


async def _classes(size: int, passes: int) -> dict[str, Any]:
    specs = generate(size)
    labelled = _queries(specs)
    rss0 = _rss()
    started = time.perf_counter()
    classes = block_classes(specs)
    define_s = time.perf_counter() - started
    rss1 = _rss()
    with temporary_home() as home:
        started, cpu = time.perf_counter(), time.process_time()
        pilot = await Pilot.open(
            bench_settings(home), registry=bench_registry(bench_blocks=False, builtins=True,
                                                          extra=classes)
        )  # fmt: skip
        try:
            open_s = time.perf_counter() - started
            open_cpu_s = time.process_time() - cpu
            started = time.perf_counter()
            blocks = len(pilot.registry)  # loads and checks every class (if open did not)
            load_s = time.perf_counter() - started
            ready = await _index_ready(pilot)
            measures = await _search_measures(pilot, labelled, passes)
            rss2 = _rss()
            return {
                "blocks": blocks,
                "generated": size,
                "problems": len(pilot.registry.problems),
                "define_classes_s": define_s,
                "pilot_open_s": open_s,
                "registry_load_s": load_s,
                "pilot_open_cpu_s": open_cpu_s,
                "open_and_first_search_s": open_s + load_s + measures["first_search_s"],
                "rss_classes_mib": rss1 - rss0,
                "rss_registry_and_index_mib": rss2 - rss1,
                "rss_per_1000_blocks_mib": (rss2 - rss0) / (size / 1000),
                **ready,
                **measures,
            }
        finally:
            await pilot.close()


async def _sources(size: int, passes: int) -> dict[str, Any]:
    specs = generate(size)
    names = {spec.name: source_block_name(spec) for spec in specs}
    labelled = [
        {**q, "relevant": [names.get(n, n) for n in q["relevant"]]} for q in _queries(specs)
    ]
    registry = lambda: bench_registry(bench_blocks=False, builtins=True)  # noqa: E731
    with temporary_home() as home:
        settings = bench_settings(home)
        pilot = await Pilot.open(settings, registry=registry())  # imports, migrations
        await pilot.close()
        started, cpu = time.perf_counter(), time.process_time()
        pilot = await Pilot.open(settings, registry=registry())
        open_without_s = time.perf_counter() - started
        open_without_cpu_s = time.process_time() - cpu
        try:
            kind = source_kind("openapi")
            for name, text in openapi_documents(specs).items():
                parsed = kind.parse(name, text, SourceOptions(base_url=BASE_URL))
                await pilot.sources.store.add(
                    SourceRecord(
                        name=name, kind="openapi", spec_text="", config=parsed.config,
                        base_url=BASE_URL,
                    )
                )  # fmt: skip
            sources = len(await pilot.sources.store.versions())
        finally:
            await pilot.close()
        del specs
        rss0 = _rss()
        started, cpu = time.perf_counter(), time.process_time()
        pilot = await Pilot.open(settings, registry=registry())
        open_s = time.perf_counter() - started
        open_cpu_s = time.process_time() - cpu
        try:
            blocks = len(pilot.registry)
            ready = await _index_ready(pilot)
            rss1 = _rss()  # with the index, where it is built in the background
            measures = await _search_measures(pilot, labelled, passes)
            rss2 = _rss()
            return {
                "blocks": blocks,
                "sources": sources,
                "generated": size,
                "pilot_open_without_sources_s": open_without_s,
                "pilot_open_s": open_s,
                "registry_start_up_s": open_s - open_without_s,
                "pilot_open_without_sources_cpu_s": open_without_cpu_s,
                "pilot_open_cpu_s": open_cpu_s,
                "registry_start_up_cpu_s": open_cpu_s - open_without_cpu_s,
                "open_and_first_search_s": open_s + measures["first_search_s"],
                "rss_open_mib": rss1 - rss0,
                "rss_index_mib": rss2 - rss1,
                "rss_per_1000_blocks_mib": (rss2 - rss0) / (size / 1000),
                **ready,
                **measures,
            }
        finally:
            await pilot.close()


def _child(case: str, size: int, passes: int) -> dict[str, Any]:
    """Run one case in a fresh interpreter and read its JSON answer."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "bench.catalog_scale", case, str(size), str(passes)],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "") or str(root)},
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-5:]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run(*, quick: bool) -> dict[str, Any]:
    cases = [("classes", 10_000), ("sources", 10_000), ("sources", 100_000)]
    if not quick:
        cases.append(("classes", 100_000))
    passes = 1 if quick else 3
    results: dict[str, Any] = {}
    for case, size in cases:
        print(f"  … {case} {size:,}", flush=True)
        load = os.getloadavg()[0]
        results[f"{case}_{size}"] = {**_child(case, size, passes), "load_average_1m": load}
    return results


def main() -> None:
    case, size, passes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    measure = {"classes": _classes, "sources": _sources}[case]
    result = asyncio.run(measure(size, passes))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
