"""Execution records: the audit trail of every run_block execution."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from blockpilot.storage.common import aware, storable, utcnow
from blockpilot.storage.engine import is_database_unavailable
from blockpilot.storage.sqlite_writer import column_processor, engine_writer
from blockpilot.storage.tables import executions as table

logger = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"completed", "failed", "timed_out", "cancelled", "interrupted"})


@dataclass(slots=True)
class ExecutionRecord:
    id: str
    user_id: str
    session_id: str
    block_id: str
    block_name: str
    status: str
    started_at: datetime
    input_redacted: dict[str, Any]
    credential_ids: list[str] = field(default_factory=list)
    is_dry_run: bool = False
    finished_at: datetime | None = None
    duration_ms: float | None = None
    output_summary: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "session_id": self.session_id,
            "block_id": self.block_id,
            "block_name": self.block_name,
            "status": self.status,
            "is_dry_run": self.is_dry_run,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_ms": self.duration_ms,
            "input": self.input_redacted,
            "output_summary": self.output_summary,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "credential_ids": self.credential_ids,
        }


def _record(row: Any) -> ExecutionRecord:
    return ExecutionRecord(
        id=row.id,
        user_id=row.user_id,
        session_id=row.session_id,
        block_id=row.block_id,
        block_name=row.block_name,
        status=row.status,
        started_at=aware(row.started_at) or utcnow(),
        input_redacted=row.input_redacted,
        credential_ids=list(row.credential_ids or []),
        is_dry_run=bool(row.is_dry_run),
        finished_at=aware(row.finished_at),
        duration_ms=row.duration_ms,
        output_summary=row.output_summary,
        error_code=row.error_code,
        error_message=row.error_message,
    )


_INSERT = table.insert()
_INSERT_COLUMNS = (
    "id", "user_id", "session_id", "block_id", "block_name", "status", "is_dry_run",
    "started_at", "input_redacted", "credential_ids", "instance_id",
)  # fmt: skip
_FINISH = (
    update(table)
    .where(table.c.id == bindparam("record_id"), table.c.status == "running")
    .values(
        status=bindparam("status"),
        finished_at=bindparam("finished_at"),
        duration_ms=bindparam("duration_ms"),
        output_summary=bindparam("output_summary"),
        error_code=bindparam("error_code"),
        error_message=bindparam("error_message"),
    )
)


class ExecutionStore:
    """Writes the ``running`` record before a block runs and the final state after.

    The ``running`` row is committed before the block starts, so a crash always leaves a
    trace (it becomes ``interrupted`` once its process is known to be gone, see
    :mod:`blockpilot.storage.leases`). Final states are written behind:
    they are buffered and committed in batches by a background task, which takes a database
    round trip off every run. Reads flush the buffer first, so this process always reads
    its own writes; a crash before a flush leaves the honest ``interrupted``.

    On a SQLite file both go through :class:`~blockpilot.storage.sqlite_writer.SQLiteWriter`:
    ``start`` still returns only after the COMMIT of its ``running`` row, but that commit is
    made directly (~20 µs, never waiting for a lock on the event loop; a writer thread takes
    over when the lock is busy) instead of through SQLAlchemy + aiosqlite (~0.7 ms), and the
    queued final states ride along in the same transaction.

    A run that cannot change anything outside blockpilot (``effect_free``: a ``read`` block or
    a dry run) does not wait for its ``running`` row on SQLite: the row is queued, committed
    within :data:`~blockpilot.storage.sqlite_writer.DEFER_SECONDS` (or with the next write),
    and a run that ends before that is written once, finished, by a single ``INSERT``. Either
    way :meth:`flush` (which ``Pilot.call_tool`` awaits before answering) commits it, so the
    record is durable before anyone hears the outcome (docs/performance.md).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # The process_leases row of this process (storage.leases), written into each record so
        # that only a dead process's runs are ever marked interrupted.
        self.instance_id: str | None = None
        self._pending: dict[str, dict[str, Any]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        # A file-backed SQLite database gets the engine's direct writer (see engine_writer),
        # shared with the other stores; other databases use the engine. Either way the running
        # row is committed before start() returns.
        self._writer = engine_writer(engine, _sqlite_statements())
        self._rows = _SQLiteRows(engine.dialect)
        # Queued running rows of effect-free runs (see start), by record id.
        self._unstarted: dict[str, tuple[Any, ...]] = {}

    async def start(self, record: ExecutionRecord, *, effect_free: bool = False) -> None:
        """Commit the ``running`` record; returns only once it is durable.

        With *effect_free* (the run changes nothing outside blockpilot) on SQLite, the row is
        queued instead and committed shortly, or together with the run's final state by
        :meth:`flush`; see the class docstring.
        """
        if self._writer is not None:
            row = self._rows.start(record, self.instance_id)
            if effect_free:
                self._writer.defer("start", row, key=record.id)
                self._unstarted[record.id] = row
                return
            await self._writer.write("start", row)
            return
        params = {
            "id": record.id,
            "user_id": record.user_id,
            "session_id": record.session_id,
            "block_id": record.block_id,
            "block_name": record.block_name,
            "status": record.status,
            "is_dry_run": record.is_dry_run,
            "started_at": record.started_at,
            "input_redacted": storable(record.input_redacted),
            "credential_ids": record.credential_ids,
            "instance_id": self.instance_id,
        }
        async with self._engine.begin() as conn:
            await conn.execute(_INSERT, params)

    def finish(self, record: ExecutionRecord) -> None:
        """Queue the final state of *record*; it is committed shortly, in a batch."""
        if self._writer is not None:
            final = self._rows.final(record)
            started = self._unstarted.pop(record.id, None)
            if started is not None and self._writer.replace_deferred(
                record.id, "start_finished", self._rows.start_finished(started, final)
            ):
                return  # the running row was still queued: one INSERT of the finished record
            self._writer.defer("finish", (*final, record.id))
            return
        params = {
            "record_id": record.id,
            "status": record.status,
            "finished_at": record.finished_at,
            "duration_ms": record.duration_ms,
            "output_summary": record.output_summary,
            "error_code": record.error_code,
            "error_message": storable(record.error_message),
        }
        self._pending[record.id] = params
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        delay = 0.2
        while True:
            try:
                await self.flush()
                return
            except Exception as exc:
                if not is_database_unavailable(exc):
                    logger.exception(
                        "could not write execution results; they will read as interrupted"
                    )
                    return
                # The database is restarting or unreachable: the results are kept and written
                # when it is back, so no run a client was told about is lost.
                logger.warning(
                    "database unavailable; execution results will be written when it is back"
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def flush(self) -> None:
        """Commit every queued final state now."""
        if self._writer is not None:
            await self._writer.barrier()
            return
        async with self._flush_lock:
            while self._pending:
                batch = list(self._pending.values())
                self._pending.clear()
                try:
                    async with self._engine.begin() as conn:
                        await conn.execute(_FINISH, batch)
                except BaseException:
                    for params in batch:  # keep them for the next attempt (newer ones win)
                        self._pending.setdefault(params["record_id"], params)
                    raise

    async def close(self) -> None:
        """Commit what is queued and release the writer (the store stays usable)."""
        await self.flush()
        self._unstarted.clear()  # all committed by the flush
        if self._writer is not None:
            await self._writer.close()

    async def get(self, user_id: str, execution_id: str) -> ExecutionRecord | None:
        await self.flush()
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(table).where(table.c.user_id == user_id, table.c.id == execution_id)
                )
            ).first()
        return None if row is None else _record(row)

    async def list(
        self, user_id: str, *, limit: int = 50, offset: int = 0
    ) -> list[ExecutionRecord]:
        await self.flush()
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(table)
                    .where(table.c.user_id == user_id)
                    .order_by(table.c.started_at.desc())
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
        return [_record(r) for r in rows]


_FINAL_COLUMNS = (
    "status", "finished_at", "duration_ms", "output_summary", "error_code", "error_message",
)  # fmt: skip
_STATUS = _INSERT_COLUMNS.index("status")


def _same(value: Any) -> Any:
    return value


class _SQLiteRows:
    """Execution records as the SQLite writer's parameters: tuples in column order, each value
    converted as SQLAlchemy would for the column (:func:`column_processor`: the same stored
    bytes as the engine path's dictionaries), built without a dictionary per write."""

    def __init__(self, dialect: Dialect) -> None:
        def convert(column: str) -> Callable[[Any], Any]:
            return column_processor(table, dialect, column) or _same

        self._dry_run = convert("is_dry_run")
        self._started_at = convert("started_at")
        self._input = convert("input_redacted")
        self._credential_ids = convert("credential_ids")
        self._finished_at = convert("finished_at")
        self._duration = convert("duration_ms")
        self._output = convert("output_summary")

    def start(self, record: ExecutionRecord, instance_id: str | None) -> tuple[Any, ...]:
        """The values of :data:`_INSERT_COLUMNS`."""
        return (
            record.id,
            record.user_id,
            record.session_id,
            record.block_id,
            record.block_name,
            record.status,
            self._dry_run(record.is_dry_run),
            self._started_at(record.started_at),
            self._input(storable(record.input_redacted)),
            self._credential_ids(record.credential_ids),
            instance_id,
        )

    def final(self, record: ExecutionRecord) -> tuple[Any, ...]:
        """The values of :data:`_FINAL_COLUMNS`."""
        return (
            record.status,
            self._finished_at(record.finished_at),
            self._duration(record.duration_ms),
            self._output(record.output_summary),
            record.error_code,
            storable(record.error_message),
        )

    @staticmethod
    def start_finished(start: tuple[Any, ...], final: tuple[Any, ...]) -> tuple[Any, ...]:
        """The start's values with the final status, then the rest of the final state's."""
        return (*start[:_STATUS], final[0], *start[_STATUS + 1 :], *final[1:])


def _sqlite_statements() -> dict[str, str]:
    names = ", ".join(_INSERT_COLUMNS)
    sets = ", ".join(f"{column} = ?" for column in _FINAL_COLUMNS)
    # A short effect-free run: the running row's columns and the final state's, one INSERT.
    finished = (*_INSERT_COLUMNS, *_FINAL_COLUMNS[1:])
    return {
        "start": f"INSERT INTO {table.name} ({names}) VALUES ({_marks(_INSERT_COLUMNS)})",
        "finish": f"UPDATE {table.name} SET {sets} WHERE id = ? AND status = 'running'",
        "start_finished": (
            f"INSERT INTO {table.name} ({', '.join(finished)}) VALUES ({_marks(finished)})"
        ),
    }


def _marks(columns: tuple[str, ...]) -> str:
    return ", ".join("?" * len(columns))
