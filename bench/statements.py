"""SQL statements per in-process ``run_block``, counted (not timed).

``python -m bench.statements [--runs N]`` runs the bench's echo block (a ``read`` block), the
same echo declared as a ``write`` block and the api_key block N times each on a fresh SQLite
file, and prints the statements each run sent, per kind. Both roads are counted: the direct
SQLite connections (``sqlite3`` trace callbacks, set on every connection opened while the
count runs) and SQLAlchemy's engine (``before_cursor_execute``), so a statement is never
missed whichever road it took. It also counts the direct connections' commits (each COMMIT,
and each write made in autocommit mode). Nothing in blockpilot is changed: the hooks are set
here.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import event

from bench.blocks import BenchApiKeyBlock, BenchEchoBlock, BenchWriteEchoBlock, bench_registry
from bench.common import open_pilot, tracing_sqlite

Counter = collections.Counter[str]
COMMITS = "(commits)"
"""Transactions committed on the direct connections: COMMITs, and writes in autocommit mode."""


def _kind(sql: str) -> str:
    words = sql.split()
    head = " ".join(words[:2]).upper() if words else ""
    if head.startswith(("INSERT INTO", "UPDATE", "DELETE FROM", "SELECT")):
        table = next((w for w in words[1:6] if w.lower() not in {"into", "from"}), "")
        if words[0].upper() == "SELECT" and "FROM" in (w.upper() for w in words):
            table = words[[w.upper() for w in words].index("FROM") + 1]
        return f"{words[0].upper()} {table.strip('(').split('.')[0]}"
    return head


@contextmanager
def counting(counts: Counter) -> Iterator[None]:
    """Count every statement of connections opened meanwhile (direct) and of the engine."""

    def new_trace() -> Callable[[str], None]:
        explicit = False  # inside BEGIN ... COMMIT on this connection

        def trace(sql: str) -> None:
            nonlocal explicit
            kind = _kind(sql)
            counts.update([kind])
            word = kind.split(" ", 1)[0]
            if word == "BEGIN":
                explicit = True
            elif word in ("COMMIT", "ROLLBACK"):
                explicit = False
                counts.update([COMMITS] if word == "COMMIT" else [])
            elif word in ("INSERT", "UPDATE", "DELETE") and not explicit:
                counts.update([COMMITS])  # one statement in autocommit mode: its own commit

        return trace

    with tracing_sqlite(new_trace):
        yield


async def run(runs: int) -> dict[str, dict[str, float]]:
    counts: Counter = collections.Counter()
    results: dict[str, dict[str, float]] = {}
    with counting(counts):
        async with open_pilot(bench_registry()) as pilot:
            event.listen(
                pilot.engine.sync_engine,
                "before_cursor_execute",
                lambda conn, cursor, sql, *rest: counts.update([_kind(sql)]),
            )
            user, _ = await pilot.users.create("bench")
            session = (await pilot.session_for(user.id, None)).session_id
            await pilot.add_credentials(
                user.id,
                {"provider": "openai", "type": "api_key", "api_key": "sk-bench-0123456789abcdef"},
            )
            cases = {
                "read block (echo)": BenchEchoBlock.id,
                "write block (echo declared write)": BenchWriteEchoBlock.id,
                "api_key block": BenchApiKeyBlock.id,
            }
            for label, block_id in cases.items():
                args = {"block_id": block_id, "input_data": {"text": "hi"}}
                for _ in range(50):  # caches warm (policy rules, sessions, workspace)
                    await pilot.call_tool("run_block", args, user_id=user.id, session_id=session)
                await asyncio.sleep(0.1)  # deferred writes of the warm-up committed
                counts.clear()
                for _ in range(runs):
                    await pilot.call_tool("run_block", args, user_id=user.id, session_id=session)
                results[label] = {k: round(v / runs, 3) for k, v in counts.most_common()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    for label, per_run in asyncio.run(run(args.runs)).items():
        commits = per_run.pop(COMMITS, 0.0)
        print(f"{label}: {sum(per_run.values()):.2f} statements, {commits:.2f} commits per run")
        for kind, n in per_run.items():
            if n >= 0.01:
                print(f"  {n:6.2f}  {kind}")


if __name__ == "__main__":
    main()
