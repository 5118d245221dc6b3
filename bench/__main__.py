"""``python -m bench``: blockpilot against its baselines and peers, measured in one run.

Sections (all by default, or pick with ``--only``):

1. ``inprocess`` — run_block vs the raw block call, LangChain ``StructuredTool.ainvoke`` and
   the MCP SDK's ``MCPServer.call_tool`` on the same function; run_block on an api_key block;
2. ``http`` — ``POST /api/v1/tools/run_block`` vs a bare FastAPI endpoint in the same server
   process at concurrency 1/16/64, and 3. MCP over streamable HTTP vs a plain ``MCPServer``;
   server RSS idle and under load;
4. ``find`` — find_block latency on 11, ~1,000 and ~10,000 blocks; recall@1/@5 on
   ``bench/queries.json``;
5. ``scale`` — credential resolution at 100/1,000/10,000 users × 20 credentials;
   1,000 concurrent 100 ms runs;
6. ``sources`` — imported OpenAPI operations: recall@1/@5 of the ``imported`` queries of
   ``bench/queries.json``; start-up and find_block with 10,220 source blocks;
7. ``workers`` — ``blockpilot serve --workers K`` run_block throughput at 1, 2 and N (cores);
8. ``catalog`` — 10,000 and 100,000 generated blocks with a varied vocabulary (classes and
   stored sources, each case in its own process): ``Pilot.open`` + first search, find_block
   p50/p95, recall on labelled queries, registry start-up, memory per 1,000 blocks.

Prints a table of results and ratios against the baselines, and writes
``bench/results/<name>.json`` and ``<name>.png``. ``--quick`` takes under two minutes.
Run it from the repository root. Needs the ``bench`` extra: ``pip install -e '.[bench]'``,
and ``wrk`` (``apt-get install wrk``) for the HTTP load; without it an httpx client process
generates the load, saturates before the servers do, and the HTTP targets are not judged.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import blockpilot
from bench import report
from bench.common import machine

SECTIONS = ("inprocess", "http", "find", "scale", "sources", "workers", "catalog")
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _git() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--", "src"],
                cwd=root,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "src_modified": None}
    return {"commit": commit, "src_modified": dirty}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer samples and shorter loads (< 2 minutes)"
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS_DIR, help="where to write the JSON and PNG"
    )
    parser.add_argument(
        "--name", default=None, help="file name stem (default: latest, or quick for --quick)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also write pyinstrument profiles of in-process run_block and of the server "
        "(the profiler slows the server and grows its memory: not for the headline numbers)",
    )
    args = parser.parse_args()
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    name = args.name or ("quick" if args.quick else "latest")
    info = machine()
    started = time.perf_counter()
    results: dict[str, Any] = {}
    timings: dict[str, float] = {}

    def timed(section: str, fn: Any) -> None:
        t0 = time.perf_counter()
        print(f"… {section}", flush=True)
        results[section] = fn()
        timings[section] = round(time.perf_counter() - t0, 1)

    if "inprocess" in sections:
        from bench import inprocess

        profile = args.out / f"{name}-profile-run_block.txt" if args.profile else None
        timed("inprocess", lambda: asyncio.run(inprocess.run(quick=args.quick, profile_to=profile)))
    if "http" in sections:
        from bench import http_bench

        profile = args.out / f"{name}-profile-server.txt" if args.profile else None
        timed("http", lambda: http_bench.run(quick=args.quick, profile_to=profile))
    if "find" in sections:
        from bench import find

        timed("find", lambda: asyncio.run(find.run(quick=args.quick)))
    if "scale" in sections:
        from bench import scale

        timed("scale", lambda: asyncio.run(scale.run(quick=args.quick)))
    if "sources" in sections:
        from bench import sources

        timed("sources", lambda: asyncio.run(sources.run(quick=args.quick)))
    if "workers" in sections:
        from bench import workers_bench

        timed("workers", lambda: workers_bench.run(quick=args.quick))
    if "catalog" in sections:
        from bench import catalog_scale

        timed("catalog", lambda: catalog_scale.run(quick=args.quick))

    rows = report.summary_rows(results)
    payload = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "machine": info,
        "git": _git(),
        "blockpilot": {
            "version": blockpilot.__version__,
            "imported_from": str(Path(blockpilot.__file__).parent),
        },
        "seconds": {**timings, "total": round(time.perf_counter() - started, 1)},
        "summary": rows,
        "results": results,
    }
    report.print_table(rows, info)
    json_path = args.out / f"{name}.json"
    report.write_json(json_path, payload)
    png_path = args.out / f"{name}.png"
    chart = report.write_chart(png_path, results, info)
    print(
        f"wrote {json_path}"
        + (f" and {png_path}" if chart else " (matplotlib not installed: no chart)")
    )
    print(f"total {payload['seconds']['total']} s")


if __name__ == "__main__":
    main()
