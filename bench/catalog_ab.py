"""The search index of another checkout against this one, in one process, on one catalogue.

Usage (from the repository root)::

    git archive f82a263 src | tar -x -C /tmp/before
    python -m bench.catalog_ab /tmp/before/src/blockpilot/blocks/search.py 100000

Both indexes are built over the same generated documents (:mod:`bench.catalog_gen`) and
queried with the same labelled queries, alternating query by query, so a busy machine slows
both alike. Reports build and query CPU time (``time.process_time``) and wall time, checks
that both return the same blocks with the same scores, and writes
``bench/results/catalog-ab-<size>.json``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.catalog_gen import generate, labelled_queries
from bench.common import percentile
from blockpilot.blocks import search as current


def _load(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("other_search", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main() -> None:
    other = _load(sys.argv[1])
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    specs = generate(size)
    queries = [q["query"] for q in labelled_queries(specs, 600)]
    result: dict[str, Any] = {"documents": size, "queries": len(queries),
                              "load_average_1m_at_start": os.getloadavg()[0]}  # fmt: skip
    indexes = {}
    for label, module in (("before", other), ("after", current)):
        docs = [
            module.SearchDocument(
                id=s.id, name=s.name, description=s.description,
                categories=(s.category.name.lower(),),
                fields=tuple((f, d) for f, _, d in s.inputs + s.outputs),
            )
            for s in specs
        ]  # fmt: skip
        wall, cpu = time.perf_counter(), time.process_time()
        indexes[label] = module.BlockSearchIndex(docs)
        result[f"{label}_build_cpu_s"] = time.process_time() - cpu
        result[f"{label}_build_wall_s"] = time.perf_counter() - wall
    for index in indexes.values():  # warm the typo caches, as a running server's are
        for query in queries:
            index.search(query, limit=40)
    samples: dict[str, dict[str, list[float]]] = {k: {"cpu": [], "wall": []} for k in indexes}
    same = 0
    for query in queries:
        answers = []
        for label, index in indexes.items():
            wall, cpu = time.perf_counter(), time.process_time()
            hits = index.search(query, limit=40)  # find_block asks for 4 × 10
            samples[label]["cpu"].append(time.process_time() - cpu)
            samples[label]["wall"].append(time.perf_counter() - wall)
            answers.append([(h.id, h.score) for h in hits])
        same += answers[0] == answers[1]
    for label, values in samples.items():
        for kind, xs in values.items():
            xs.sort()
            result[f"{label}_{kind}_p50_us"] = percentile(xs, 0.5) * 1e6
            result[f"{label}_{kind}_p95_us"] = percentile(xs, 0.95) * 1e6
    result["identical_answers"] = same
    result["cpu_p50_ratio_before_over_after"] = (
        result["before_cpu_p50_us"] / result["after_cpu_p50_us"]
    )
    out = Path(__file__).resolve().parent / "results" / f"catalog-ab-{size}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
