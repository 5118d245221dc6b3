"""The SQLite writer stores execution records byte for byte as before it bound tuples.

Since round six the writer binds each record as a tuple in column order, with datetimes
formatted by one ``%`` of a tuple (docs/performance.md). What the file holds must not change:
every column's SQLite type and value is compared with what the earlier binding wrote
(named parameters, each converted by SQLAlchemy's own bind processor, JSON by ``_json_text``),
for the three ways a record reaches the file (one INSERT of the finished record, a committed
running row and its UPDATE, a deferred running row committed before its UPDATE).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite as sqlite_dialect

from blockpilot.pilot import Pilot
from blockpilot.storage.common import storable
from blockpilot.storage.executions import ExecutionRecord
from blockpilot.storage.sqlite_writer import _json_text, column_processor
from blockpilot.storage.tables import executions
from blockpilot.storage.users import User

DIALECT = sqlite_dialect.dialect()
COLUMNS = [column.name for column in executions.c]


class _Later(datetime):
    """A datetime subclass: left to SQLAlchemy's own processor."""


DATETIMES = [
    datetime(2026, 12, 7, 8, 21, 29, 123456, tzinfo=UTC),
    datetime(2026, 12, 7, 8, 21, 29, tzinfo=UTC),  # no microseconds: still six digits
    datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # a year of three digits
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 6, 1, 12, 0, 0, 500, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 6, 1, 12, 0, 0, 500),  # naive
    _Later(2026, 6, 1, 12, 0, 0, 7, tzinfo=UTC),
    date(2026, 6, 1),
    None,
]


@pytest.mark.parametrize("value", DATETIMES, ids=repr)
def test_datetimes_are_written_as_sqlalchemy_writes_them(value: Any) -> None:
    for column in ("started_at", "finished_at"):
        ours = column_processor(executions, DIALECT, column)
        theirs = executions.c[column].type.dialect_impl(DIALECT).bind_processor(DIALECT)
        assert ours is not None and theirs is not None
        assert ours(value) == theirs(value)


def test_what_sqlalchemy_refuses_is_refused_alike() -> None:
    ours = column_processor(executions, DIALECT, "started_at")
    theirs = executions.c.started_at.type.dialect_impl(DIALECT).bind_processor(DIALECT)
    assert ours is not None and theirs is not None
    for bad in ("2026-01-01", 1.5):
        with pytest.raises(TypeError):
            theirs(bad)
        with pytest.raises(TypeError):
            ours(bad)


def _earlier_binding(values: dict[str, Any]) -> dict[str, Any]:
    """What the writer bound before round six: SQLAlchemy's processors, JSON by _json_text."""
    out = {}
    for name, value in values.items():
        column_type = executions.c[name].type
        if name in ("input_redacted", "output_summary", "credential_ids"):
            out[name] = _json_text(value)
            continue
        process = column_type.dialect_impl(DIALECT).bind_processor(DIALECT)
        out[name] = process(value) if process is not None else value
    return out


def _stored(conn: sqlite3.Connection, record_id: str) -> list[tuple[str, Any]]:
    select = ", ".join(f"typeof({c}), {c}" for c in COLUMNS)
    row = conn.execute(f"SELECT {select} FROM executions WHERE id = ?", (record_id,)).fetchone()
    assert row is not None, record_id
    return list(zip(row[::2], row[1::2], strict=True))


def _records(user: User, session_id: str, instance_id: str | None) -> list[ExecutionRecord]:
    started = datetime(2026, 12, 7, 8, 21, 29, tzinfo=UTC)
    nan = float("nan")
    plain = ExecutionRecord(
        id=f"copilot-{session_id}-plain",
        user_id=user.id,
        session_id=session_id,
        block_id="0b2d0c1e-5d2b-4a51-9a57-0f6c7d1c3b11",
        block_name="Echo",
        status="running",
        started_at=started,
        input_redacted={"text": "hi"},
    )
    odd = ExecutionRecord(
        id=f"copilot-{session_id}-odd",
        user_id=user.id,
        session_id=session_id,
        block_id="b",
        block_name="Ünïcode ☃",
        status="running",
        started_at=started + timedelta(microseconds=1),
        input_redacted={"nan": nan, "inf": float("-inf"), "lone": "a\ud800b", "list": [1, 2.5]},
        credential_ids=["cred-1", "cred-2"],
        is_dry_run=True,
    )
    return [plain, odd]


def _finish(record: ExecutionRecord, index: int) -> None:
    record.finished_at = record.started_at + timedelta(milliseconds=3, microseconds=index)
    if index % 2:
        record.status = "failed"
        record.duration_ms = 3  # an int: stored as REAL, as SQLAlchemy's Float binds it
        record.error_code = "block_error"
        record.error_message = "bad \udcff thing"
        record.output_summary = {"partial": float("inf")}
    else:
        record.status = "completed"
        record.duration_ms = 3.141
        record.output_summary = None


def _expected(record: ExecutionRecord, instance_id: str | None) -> dict[str, Any]:
    return _earlier_binding(
        {
            "id": record.id,
            "user_id": record.user_id,
            "session_id": record.session_id,
            "block_id": record.block_id,
            "block_name": record.block_name,
            "status": record.status,
            "is_dry_run": record.is_dry_run,
            "started_at": record.started_at,
            "finished_at": record.finished_at,
            "duration_ms": record.duration_ms,
            "input_redacted": storable(record.input_redacted),
            "output_summary": record.output_summary,
            "error_code": record.error_code,
            "error_message": storable(record.error_message),
            "credential_ids": record.credential_ids,
            "instance_id": instance_id,
        }
    )


async def test_records_are_stored_byte_for_byte_as_before(pilot: Pilot, alice: User) -> None:
    store = pilot.executions
    if store._writer is None:
        pytest.skip("the SQLite writer's binding (PostgreSQL goes through SQLAlchemy)")
    session = await pilot.sessions.create(alice.id)
    path = pilot.engine.url.database or ""
    reference = sqlite3.connect(":memory:")
    conn = sqlite3.connect(path)
    (schema,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'executions'").fetchone()
    conn.close()
    reference.execute(schema)  # foreign keys are not enforced here: no users table needed
    names = ", ".join(COLUMNS)
    insert = f"INSERT INTO executions ({names}) VALUES ({', '.join(':' + c for c in COLUMNS)})"
    ways = ("one INSERT", "running row, then UPDATE", "deferred running row, then UPDATE")
    checked = 0
    for way_index, way in enumerate(ways):
        for index, record in enumerate(_records(alice, f"{session.session_id}{way_index}", None)):
            if way == "one INSERT":
                await store.start(record, effect_free=True)
            elif way == "running row, then UPDATE":
                await store.start(record)
            else:
                await store.start(record, effect_free=True)
                await store.flush()
            _finish(record, index)
            store.finish(record)
            await store.flush()
            reference.execute(insert, _expected(record, store.instance_id))
            conn = sqlite3.connect(path)
            try:
                assert _stored(conn, record.id) == _stored(reference, record.id), way
            finally:
                conn.close()
            checked += 1
    assert checked == 6
    reference.close()
