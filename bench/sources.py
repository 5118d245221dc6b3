"""6. Imported sources (docs/sources.md): find_block quality over imported operations, and
start-up with 10,000 source blocks.

* Quality: the Petstore, Google Maps and Box descriptions of ``tests/data/openapi`` are
  imported beside the built-in blocks; recall@1/@5 of the ``imported`` queries of
  ``bench/queries.json`` (written from the operations' descriptions) and find_block latency.
* Scale: the Box description stored under 35 source names (10,220 blocks, 1.3 MB of parsed
  config each). Measured: ``Pilot.open`` (migrations, reading every stored source, building
  its blocks) against ``Pilot.open`` with no sources; the first search index build; and
  find_block p50/p99 over that catalogue.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

from bench.blocks import bench_registry
from bench.common import Samples, bench_settings, open_pilot, temporary_home
from blockpilot.pilot import Pilot
from blockpilot.sources.base import SourceOptions, source_kind
from blockpilot.storage.sources import SourceRecord

QUERIES_FILE = Path(__file__).with_name("queries.json")
SPECS = Path(__file__).resolve().parent.parent / "tests" / "data" / "openapi"
BASE_URL = "https://api.example.com"  # never called: find_block only
COPIES = 35


def imported_queries() -> dict[str, Any]:
    return dict(json.loads(QUERIES_FILE.read_text())["imported"])


async def _latency(pilot: Pilot, user_id: str, queries: list[str], passes: int) -> dict[str, float]:
    session = (await pilot.session_for(user_id, None)).session_id
    for query in queries:
        await pilot.call_tool("find_block", {"query": query}, user_id=user_id, session_id=session)
    samples = Samples()
    for _ in range(passes):
        for query in queries:
            started = time.perf_counter()
            await pilot.call_tool(
                "find_block", {"query": query}, user_id=user_id, session_id=session
            )
            samples.values.append(time.perf_counter() - started)
    return samples.summary()


async def _quality(quick: bool) -> dict[str, Any]:
    spec = imported_queries()
    labelled = spec["queries"]
    async with open_pilot(bench_registry(bench_blocks=False, builtins=True)) as pilot:
        counts = {}
        for name, file in spec["sources"].items():
            text = (SPECS / file).read_text(encoding="utf-8")
            result = await pilot.sources.add(
                "openapi", name, text, SourceOptions(base_url=BASE_URL)
            )
            counts[name] = {"blocks": result.parsed.blocks, "skipped": len(result.parsed.skipped)}
        user, _ = await pilot.users.create("bench")
        session = (await pilot.session_for(user.id, None)).session_id
        names = {b.name for b in pilot.registry.all()}
        hits1 = hits5 = 0
        misses = []
        for entry in labelled:
            unknown = set(entry["relevant"]) - names
            if unknown:
                raise ValueError(f"queries.json 'imported' names unknown blocks {sorted(unknown)}")
            response = await pilot.call_tool(
                "find_block", {"query": entry["query"]}, user_id=user.id, session_id=session
            )
            got = [b.name for b in getattr(response, "blocks", [])]
            relevant = set(entry["relevant"])
            hits1 += bool(got) and got[0] in relevant
            top5 = any(n in relevant for n in got[:5])
            hits5 += top5
            if not top5 or got[0] not in relevant:
                misses.append(
                    {"query": entry["query"], "relevant": entry["relevant"], "got": got[:5]}
                )
        latency = await _latency(pilot, user.id, [q["query"] for q in labelled], 3 if quick else 10)
        return {
            "sources": counts,
            "blocks": len(pilot.registry),
            "queries": len(labelled),
            "recall_at_1": hits1 / len(labelled),
            "recall_at_5": hits5 / len(labelled),
            "not_first": misses,
            **latency,
        }


async def _scale(quick: bool) -> dict[str, Any]:
    text = (SPECS / "box.json").read_text(encoding="utf-8")
    parsed = source_kind("openapi").parse("box", text, SourceOptions(base_url=BASE_URL))
    queries = [q["query"] for q in imported_queries()["queries"]]
    registry = lambda: bench_registry(bench_blocks=False, builtins=True)  # noqa: E731
    with temporary_home() as home:
        settings = bench_settings(home)
        started = time.perf_counter()
        pilot = await Pilot.open(settings, registry=registry())
        baseline_open = time.perf_counter() - started
        try:
            for i in range(COPIES):
                name = f"box{i:02d}"
                config = copy.deepcopy(parsed.config)
                for op in config["operations"]:
                    op["name"] = name + op["name"][len("box") :]
                await pilot.sources.store.add(
                    SourceRecord(
                        name=name, kind="openapi", spec_text="", config=config, base_url=BASE_URL
                    )
                )
        finally:
            await pilot.close()
        started = time.perf_counter()
        pilot = await Pilot.open(settings, registry=registry())
        open_s = time.perf_counter() - started
        try:
            started = time.perf_counter()
            _ = pilot.catalog.index
            index_s = time.perf_counter() - started
            user, _ = await pilot.users.create("bench")
            latency = await _latency(pilot, user.id, queries, 1 if quick else 3)
            return {
                "source_blocks": len(pilot.registry) - len(registry().all()),
                "blocks": len(pilot.registry),
                "open_without_sources_s": baseline_open,
                "open_with_sources_s": open_s,
                "first_index_build_s": index_s,
                **latency,
            }
        finally:
            await pilot.close()


async def run(*, quick: bool) -> dict[str, Any]:
    return {"quality": await _quality(quick), "scale": await _scale(quick)}
