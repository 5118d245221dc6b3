"""``ix_executions_status`` holds the running rows only (migration 0012), on SQLite and
PostgreSQL: the two queries that look for running rows (the lease sweep and
``interrupt_own``) still use it, and the migration goes down and up again with rows in place.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, select, text

from blockpilot.pilot import Pilot
from blockpilot.storage.common import utcnow
from blockpilot.storage.engine import MIGRATIONS_DIR
from blockpilot.storage.executions import ExecutionRecord
from blockpilot.storage.tables import executions
from blockpilot.storage.users import User
from tests.bp_database import is_postgresql


async def _lease_statements(pilot: Pilot) -> list[tuple[str, Any]]:
    """The UPDATEs of executions that the lease sweep and interrupt_own send, as sent."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE EXECUTIONS"):
            sent.append((statement, parameters))

    event.listen(pilot.engine.sync_engine, "before_cursor_execute", record)
    try:
        await pilot.leases.interrupt_orphans()
        await pilot.leases.interrupt_own()
    finally:
        event.remove(pilot.engine.sync_engine, "before_cursor_execute", record)
    assert len(sent) == 2, sent
    return sent


async def _plan(pilot: Pilot, statement: str, parameters: Any) -> str:
    if not is_postgresql(pilot):
        conn = sqlite3.connect(pilot.engine.url.database or "")
        try:
            rows = conn.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
        finally:
            conn.close()
        return "\n".join(str(row[-1]) for row in rows)
    # PostgreSQL: the generic plan of the prepared statement (what a driver's statement cache
    # ends up running), with sequential scans priced out so that a usable index is used.
    async with pilot.engine.connect() as engine_conn:
        driver = (await engine_conn.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.execute("SET plan_cache_mode = force_generic_plan")
        await driver.execute("SET enable_seqscan = off")
        await driver.execute(f"PREPARE running_probe AS {statement}")
        nulls = ", ".join(["NULL"] * len(parameters))
        rows = await driver.fetch(f"EXPLAIN EXECUTE running_probe({nulls})")
        await driver.execute("DEALLOCATE running_probe")
        await driver.execute("RESET ALL")
    return "\n".join(row[0] for row in rows)


async def test_the_lease_queries_use_the_running_index(pilot: Pilot) -> None:
    for statement, parameters in await _lease_statements(pilot):
        plan = await _plan(pilot, statement, parameters)
        assert "ix_executions_status" in plan, (statement, plan)


async def _index_sql(pilot: Pilot) -> str:
    async with pilot.engine.connect() as conn:
        if is_postgresql(pilot):
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_executions_status'"
        else:
            query = "SELECT sql FROM sqlite_master WHERE name = 'ix_executions_status'"
        return str((await conn.execute(text(query))).scalar_one())


def _migrate_to(revision: str) -> Any:
    def run(sync_connection: Any) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = sync_connection
        if revision == "0011":
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)

    return run


async def test_migration_0012_goes_down_and_up_with_rows_in_place(
    pilot: Pilot, alice: User
) -> None:
    session = await pilot.sessions.create(alice.id)
    for name, status in (("run", "running"), ("done", "completed")):
        await pilot.executions.start(
            ExecutionRecord(
                id=f"copilot-{session.session_id}-{name}",
                user_id=alice.id,
                session_id=session.session_id,
                block_id="b",
                block_name="B",
                status=status,
                started_at=utcnow(),
                input_redacted={"k": name},
            )
        )
    assert "running" in (await _index_sql(pilot)).lower()  # partial at head

    async def rows() -> list[tuple[str, str]]:
        async with pilot.engine.connect() as conn:
            query = select(executions.c.id, executions.c.status).order_by(executions.c.id)
            return [(r.id, r.status) for r in (await conn.execute(query)).all()]

    before = await rows()
    async with pilot.engine.begin() as conn:
        await conn.run_sync(_migrate_to("0011"))
    assert "running" not in (await _index_sql(pilot)).lower()  # the full index again
    assert await rows() == before
    async with pilot.engine.begin() as conn:
        await conn.run_sync(_migrate_to("head"))
    assert "running" in (await _index_sql(pilot)).lower()
    assert await rows() == before
    for statement, parameters in await _lease_statements(pilot):
        assert "ix_executions_status" in await _plan(pilot, statement, parameters)
