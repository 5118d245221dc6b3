"""4. find_block: latency on catalogues of three sizes, and retrieval quality.

Latency is the whole tool call, ``pilot.call_tool("find_block", {"query": ...})`` (session
check, search, filtering, the response with up to 10 block summaries), after one warm-up
pass over the queries (as in a running server, whose typo cache is warm):

* the built-in catalogue, queried with the labelled queries of ``bench/queries.json``;
* the built-in blocks plus 1,000 and plus 10,000 synthetic blocks (names and descriptions
  from :func:`bench.search_bench.make_documents`), queried with the labelled queries and a
  mix of keyword, multi-word, synonym, typo and exact-name queries.

Quality: recall@1 and recall@5 of the labelled queries on the built-in catalogue. A query
counts as found at k when any block labelled relevant is among the first k results.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from pathlib import Path
from typing import Any

from bench.blocks import bench_registry
from bench.common import Samples, open_pilot
from bench.search_bench import make_documents, make_queries
from blockpilot.blocks.base import Block, BlockCategory, BlockOutput
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, SchemaField

QUERIES_FILE = Path(__file__).with_name("queries.json")


def labelled_queries() -> list[dict[str, Any]]:
    return list(json.loads(QUERIES_FILE.read_text())["queries"])


class _SyntheticInput(BlockSchemaInput):
    text: str = SchemaField(description="Input text")


class _SyntheticOutput(BlockSchemaOutput):
    result: str = SchemaField(description="Result")


async def _synthetic_run(self: Block, input_data: Any, **kwargs: Any) -> BlockOutput:
    yield "result", input_data.text


def synthetic_blocks(count: int, seed: int = 7) -> tuple[list[type[Block]], list[Any]]:
    """*count* Block classes named and described like real blocks, and their documents."""
    docs = make_documents(count, random.Random(seed))
    categories = list(BlockCategory)
    classes: list[type[Block]] = []
    for i, doc in enumerate(docs):
        classes.append(
            type(
                doc.name,
                (Block,),
                {
                    "id": str(uuid.UUID(int=0xB3E0_0000_0000_0000_0000_0000_0000_0000 + i)),
                    "description": doc.description,
                    "categories": frozenset({categories[i % len(categories)]}),
                    "Input": _SyntheticInput,
                    "Output": _SyntheticOutput,
                    "run": _synthetic_run,
                    "__module__": __name__,
                },
            )
        )
    return classes, docs


async def _latency(pilot: Any, user_id: str, queries: list[str], passes: int) -> dict[str, float]:
    session = (await pilot.session_for(user_id, None)).session_id  # one chat, as a model calls
    for query in queries:  # warm-up pass
        await pilot.call_tool("find_block", {"query": query}, user_id=user_id, session_id=session)
    samples = Samples()
    clock = time.perf_counter
    for _ in range(passes):
        for query in queries:
            started = clock()
            await pilot.call_tool(
                "find_block", {"query": query}, user_id=user_id, session_id=session
            )
            samples.values.append(clock() - started)
    return samples.summary()


async def run(*, quick: bool) -> dict[str, Any]:
    labelled = labelled_queries()
    texts = [q["query"] for q in labelled]
    passes = 3 if quick else 10
    results: dict[str, Any] = {"queries": len(labelled), "catalogues": {}}

    async with open_pilot(bench_registry(bench_blocks=False, builtins=True)) as pilot:
        user, _ = await pilot.users.create("bench")
        session = (await pilot.session_for(user.id, None)).session_id
        builtin_names = {b.name for b in pilot.registry.all() if pilot.catalog.usable(b)}
        hits1 = hits5 = 0
        misses: list[dict[str, Any]] = []
        for entry in labelled:
            unknown = set(entry["relevant"]) - builtin_names
            if unknown:
                raise ValueError(f"queries.json names unknown blocks {sorted(unknown)}")
            response = await pilot.call_tool(
                "find_block", {"query": entry["query"]}, user_id=user.id, session_id=session
            )
            names = [b.name for b in getattr(response, "blocks", [])]
            relevant = set(entry["relevant"])
            top1 = bool(names) and names[0] in relevant
            top5 = any(name in relevant for name in names[:5])
            hits1 += top1
            hits5 += top5
            if not top1:
                misses.append(
                    {"query": entry["query"], "relevant": entry["relevant"], "got": names[:5]}
                )
        results["recall_at_1"] = hits1 / len(labelled)
        results["recall_at_5"] = hits5 / len(labelled)
        results["not_first"] = misses
        usable = sum(1 for b in pilot.registry.all() if pilot.catalog.usable(b))
        results["catalogues"]["built-in"] = {
            "blocks": usable,
            **await _latency(pilot, user.id, texts, passes),
        }

    for size in (1_000, 10_000):
        classes, docs = synthetic_blocks(size)
        registry = bench_registry(bench_blocks=False, builtins=True, extra=classes)
        started = time.perf_counter()
        async with open_pilot(registry) as pilot:
            user, _ = await pilot.users.create("bench")
            _ = pilot.catalog.index  # load the registry and build the index
            build_s = time.perf_counter() - started
            mixed = texts + make_queries(docs, 200 if quick else 500, random.Random(11))
            results["catalogues"][f"+{size:,} synthetic"] = {
                "blocks": len(pilot.registry),
                "load_and_index_s": build_s,
                **await _latency(pilot, user.id, mixed, max(1, passes // 3)),
            }
    return results
