"""The stores of one engine write through one SQLite writer (docs/performance.md).

On a SQLite file the execution records, a credential's last use and new chat sessions go
through the engine's one :class:`~blockpilot.storage.sqlite_writer.SQLiteWriter`, so their
writes share transactions: a credentialed run's queued final state is committed with its
credential's last use, one commit per run fewer. What must not change: both are committed
before the call answers (read here through a connection of the test's own), an error stays
with the write that caused it, nothing secret is written, and another user's credentials are
not touched. The durability checks run on PostgreSQL too.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from blockpilot.pilot import Pilot
from blockpilot.storage.common import utcnow
from blockpilot.storage.executions import ExecutionRecord
from blockpilot.storage.sqlite_writer import SQLiteWriter
from blockpilot.storage.tables import chat_sessions, credentials, executions
from blockpilot.storage.users import User
from tests.tools.bp_helpers import add_api_key, make_registry, run_block
from tests.tools.bp_test_blocks import ApiKeyEchoBlock

CANARY = "sk-canary-shared-writer-0123456789"


@pytest.fixture
def pilot_registry() -> Any:
    return make_registry()


async def _last_used(pilot: Pilot) -> dict[str, Any]:
    """Each credential's last use as another connection sees it."""
    async with pilot.engine.connect() as conn:
        rows = (await conn.execute(select(credentials.c.id, credentials.c.last_used_at))).all()
    return {row.id: row.last_used_at for row in rows}


async def _status(pilot: Pilot, execution_id: str) -> str | None:
    async with pilot.engine.connect() as conn:
        return await conn.scalar(select(executions.c.status).where(executions.c.id == execution_id))


async def test_the_stores_of_one_engine_share_one_writer(pilot: Pilot, settings_factory) -> None:
    writer = pilot.executions._writer
    assert pilot.credential_store._writer is writer
    assert pilot.sessions._writer is writer
    if writer is None:  # not a SQLite file: every store uses the engine
        return
    other = await Pilot.open(settings_factory(), registry=make_registry())
    try:
        assert other.executions._writer is not pilot.executions._writer
        assert other.credential_store._writer is other.executions._writer
    finally:
        await other.close()


async def test_a_credentialed_run_commits_its_final_state_with_its_last_use(
    pilot: Pilot, alice: User, bob: User
) -> None:
    cred_id = await add_api_key(pilot, alice.id, key=CANARY)
    bobs = await add_api_key(pilot, bob.id, key="sk-bob-0123456789abcdef")
    session = (await pilot.session_for(alice.id, None)).session_id
    first = await run_block(
        pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "hi"}, session_id=session
    )
    assert first["type"] == "block_output", first
    writer = pilot.executions._writer
    statements: list[str] = []
    if writer is not None:
        assert writer._inline is not None
        writer._inline.set_trace_callback(statements.append)
    before = (await _last_used(pilot))[cred_id]

    data = await run_block(
        pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "hi"}, session_id=session
    )

    # Durable before the answer: read through another connection, nothing flushed since.
    assert data["type"] == "block_output", data
    assert await _status(pilot, data["execution_id"]) == "completed"
    used = await _last_used(pilot)
    assert used[cred_id] is not None and (before is None or used[cred_id] >= before)
    assert used[bobs] is None  # the second user's credential is not touched
    if writer is not None:
        assert writer._inline is not None
        writer._inline.set_trace_callback(None)
        words = [sql.split(None, 1)[0].upper() for sql in statements]
        # The running row (this block may change something: committed before it starts),
        # then the final state and the last use in one transaction: two commits, not three.
        assert words == ["INSERT", "BEGIN", "UPDATE", "UPDATE", "COMMIT"], statements
        assert "UPDATE executions" in statements[2] and "UPDATE credentials" in statements[3]
        assert not [sql for sql in statements if CANARY in sql]


async def _session_owner(pilot: Pilot, session_id: str) -> str | None:
    async with pilot.engine.connect() as conn:
        query = select(chat_sessions.c.user_id).where(chat_sessions.c.id == session_id)
        return await conn.scalar(query)


async def test_a_new_session_is_durable_when_the_call_answers_without_a_run(
    pilot: Pilot, alice: User
) -> None:
    """Answers that write nothing (bad arguments, a search) still commit the new session."""
    bad = await pilot.call_tool("run_block", {"nope": 1}, user_id=alice.id)
    found = await pilot.call_tool("find_block", {"query": "echo"}, user_id=alice.id)
    assert bad.type == "error" and bad.model_dump()["code"] == "invalid_arguments"
    for answer in (bad, found):
        assert answer.session_id is not None
        assert await _session_owner(pilot, answer.session_id) == alice.id


async def test_an_error_stays_with_its_write_when_stores_share_a_transaction(
    pilot: Pilot, alice: User
) -> None:
    session = await pilot.sessions.create(alice.id)
    record = ExecutionRecord(
        id=f"copilot-{session.session_id}-shared-writer",
        user_id=alice.id,
        session_id=session.session_id,
        block_id=ApiKeyEchoBlock.id,
        block_name="ApiKeyEchoBlock",
        status="running",
        started_at=utcnow(),
        input_redacted={"prompt": "hi"},
    )
    # Queued on SQLite (a run that changes nothing outside), committed at once elsewhere.
    await pilot.executions.start(record, effect_free=True)
    # A session of no user fails (foreign key) in the transaction that also carries the
    # queued running row: the failure reaches this caller alone, and the row is committed.
    with pytest.raises(IntegrityError):
        await pilot.sessions.create("no-such-user")
    if pilot.executions._writer is not None:
        await pilot.executions._writer.barrier()  # the row's retry alone, on the thread
    assert await _status(pilot, record.id) == "running"
    record.status, record.finished_at = "completed", utcnow()
    pilot.executions.finish(record)
    await pilot.executions.flush()
    assert await _status(pilot, record.id) == "completed"


def test_a_statement_name_keeps_its_one_sql(tmp_path: Any) -> None:
    writer = SQLiteWriter(str(tmp_path / "x.db"), {"a": "INSERT INTO t VALUES (1)"})
    writer.add_statements({"a": "INSERT INTO t VALUES (1)", "b": "DELETE FROM t"})
    with pytest.raises(ValueError, match="'a'"):
        writer.add_statements({"a": "DELETE FROM t"})
