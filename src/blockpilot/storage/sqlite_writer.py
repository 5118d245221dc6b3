"""Fast, durable small writes to a SQLite file: inline when the write lock is free, else a thread.

Why: through SQLAlchemy + aiosqlite one ``INSERT`` and its ``COMMIT`` cost ~0.7-1 ms (pool
checkout, one aiosqlite thread hop per cursor call, the commit, the pool's reset on return).
Even one hop to a dedicated writer thread costs 25-90 µs on a small VM (a cross-core wake-up
each way). An uncontended SQLite transaction in WAL mode with ``synchronous=NORMAL`` is an
append to the WAL file, without fsync: ~15-20 µs. So:

* :meth:`SQLiteWriter.write` commits on the caller's thread (the event loop) with its own
  connection whose ``busy_timeout`` is 0: if another connection holds the write lock, it
  does not wait there but hands the write to the writer thread (which waits, with the
  engine's busy timeout) and awaits that commit instead. The loop never waits for a lock.
* The inline connection never checkpoints (``wal_autocheckpoint=0``); the checkpoints, which
  do fsync, run on the writer thread (``PASSIVE``, every :data:`CHECKPOINT_EVERY` commits or
  :data:`CHECKPOINT_WRITES` writes, whichever comes first), in two passes: the first copies
  the WAL while writes go on committing inline, the second, with writes held back, copies
  only what they appended meanwhile, so that the WAL is copied whole and starts over.
* Durability is the engine's: the same file, WAL and ``synchronous=NORMAL``; ``write`` returns
  only after its transaction committed. A transaction of one statement is that statement in
  SQLite's autocommit mode (atomic all the same, and two round trips into SQLite fewer than
  ``BEGIN IMMEDIATE`` … ``COMMIT``); a lock held elsewhere fails it at once just as well.
* Writes that other tasks make in the same event-loop iteration after the first (a burst of
  runs starting together) share one commit at the end of that iteration (group commit): a burst of N
  writes costs about one transaction, not N. A lone write still commits at once.
* Writes nobody waits for (:meth:`SQLiteWriter.defer`, e.g. an execution's final state) are
  committed in the same transaction as the next :meth:`~SQLiteWriter.write`, or on their own
  after ``defer_seconds``, or at the next :meth:`~SQLiteWriter.barrier`, whichever is first.
  A deferred write given a key can be replaced while it is still queued
  (:meth:`SQLiteWriter.replace_deferred`): a row inserted and finished within
  ``defer_seconds`` is then written once, by one statement.
* When writes go to the thread, whatever has queued up is committed in one transaction
  (group commit); if that fails, each write is retried alone so an error stays its own.
* The stores of one engine share one writer (:func:`engine_writer`), so their writes share
  transactions too: a run's final state rides in the commit of its credential's last use.

The thread starts on first use and ends after a few idle seconds (or at :meth:`close`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import queue
import sqlite3
import threading
import weakref
from collections.abc import Callable, Hashable, Mapping
from datetime import datetime
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Table
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import sqltypes

logger = logging.getLogger(__name__)

IDLE_SECONDS = 5.0
DEFER_SECONDS = 0.05
CHECKPOINT_EVERY = 500
"""Inline commits between two checkpoints (SQLite's own default is 1,000 pages; a commit of an
execution row writes ~4)."""
CHECKPOINT_WRITES = 5_000
"""...or inline writes, whichever comes first. A group commit carries as many rows as there are
runs ending in one loop iteration, and 500 commits of dozens of rows let the WAL grow to 86 MB
(64 concurrent callers in process; 500 commits of 1,000 rows would be ~2 GB) before a
checkpoint that then holds every write behind it for as long. Checkpointing more often costs
some CPU (a page changed by many commits is copied more often): ~1.5 µs per call at
concurrency 64 with 5,000, ~3.5 with 2,000, nothing measurable at 16 (docs/performance.md)."""
_MAX_BATCH = 512

Params = Mapping[str, Any] | tuple[Any, ...]
"""A statement's parameters: by name (``:name``) or in order (``?``)."""
_Item = tuple[str, Params | None, "asyncio.Future[None] | None"]
_STOP = "stop"
_BARRIER = "barrier"
_CHECKPOINT = "checkpoint"
_MARKERS = frozenset({_STOP, _BARRIER, _CHECKPOINT})


def sqlite_file(engine: AsyncEngine) -> str | None:
    """The database file of a file-backed SQLite *engine*; None for anything else."""
    url = engine.url
    if engine.dialect.name != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    if url.query.get("uri"):
        return None
    return database


_ENGINE_WRITERS: weakref.WeakKeyDictionary[Any, SQLiteWriter] = weakref.WeakKeyDictionary()


def engine_writer(
    engine: AsyncEngine,
    statements: Mapping[str, str],
    processors: Mapping[str, Callable[[Any], Params]] | None = None,
) -> SQLiteWriter | None:
    """The one :class:`SQLiteWriter` of *engine*'s SQLite file, with *statements* added; None
    for an engine that is not a file-backed SQLite database.

    Why one per engine, not one per store: writes of different stores then share
    transactions. A credentialed run's last-use UPDATE is committed together with the run's
    queued final state, one commit per run fewer (docs/performance.md), and the stores never
    find the write lock held by each other's connection. One inline connection, one thread
    and one checkpoint cadence per file.
    """
    path = sqlite_file(engine)
    if path is None:
        return None
    writer = _ENGINE_WRITERS.get(engine.sync_engine)
    if writer is None:
        writer = _ENGINE_WRITERS[engine.sync_engine] = SQLiteWriter(path, {})
    writer.add_statements(statements, processors)
    return writer


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():  # the caller was cancelled meanwhile
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


class SQLiteWriter:
    """Durable small writes to one SQLite file (see the module docstring).

    Args:
        path: The database file (the engine's).
        statements: Name → SQL with ``:named`` parameters.
        processors: Name → a function turning caller parameters into the driver's values
            (see :func:`bind_processors`).
    """

    def __init__(
        self,
        path: str,
        statements: Mapping[str, str],
        processors: Mapping[str, Callable[[Any], Params]] | None = None,
        *,
        idle_seconds: float = IDLE_SECONDS,
        defer_seconds: float = DEFER_SECONDS,
        checkpoint_writes: int = CHECKPOINT_WRITES,
    ) -> None:
        self._path = path
        self._statements = dict(statements)
        self._processors = dict(processors or {})
        self._idle = idle_seconds
        self._defer = defer_seconds
        self._checkpoint_writes = checkpoint_writes
        self._deferred: list[_Item] = []
        self._deferred_at: dict[Hashable, int] = {}  # key -> index in _deferred (see defer)
        # Group commit (see write): the loop whose current iteration has already committed a
        # write, and the writes and barriers of that iteration waiting for the next commit.
        self._tick_loop: asyncio.AbstractEventLoop | None = None
        self._tick_task: asyncio.Task[Any] | None = None
        self._group: list[_Item] = []  # writes and barriers (_BARRIER) of this iteration
        self._timer: asyncio.TimerHandle | None = None
        self._inline: sqlite3.Connection | None = None
        self._inline_lock = threading.Lock()
        self._inline_commits = 0
        # Since the last checkpoint was queued (CHECKPOINT_EVERY, checkpoint_writes).
        self._commits_unchecked = 0
        self._writes_unchecked = 0
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._thread_writes = 0  # writes handed to the thread and not yet done (under _lock)
        # A checkpoint's second pass is running on the thread: writes go there too until it
        # ends (see _commit_inline and _checkpoint).
        self._checkpointing = False
        # Checkpoints queued, and those served by a completed checkpoint: a test bounds the
        # WAL by the writes made while one was pending (the WAL's high-water mark depends on
        # them).
        self._checkpoints_queued = 0
        self._checkpoints = 0

    def add_statements(
        self,
        statements: Mapping[str, str],
        processors: Mapping[str, Callable[[Any], Params]] | None = None,
    ) -> None:
        """Register more named statements (another store's); a name keeps its one SQL.

        Raises:
            ValueError: *statements* gives a registered name other SQL.
        """
        for name, sql in statements.items():
            if self._statements.setdefault(name, sql) != sql:
                raise ValueError(f"statement {name!r} is already registered with other SQL")
        self._processors.update(processors or {})

    # -- callers (event loop) --------------------------------------------------------------

    async def write(self, name: str, params: Params) -> None:
        """Commit one write (with any deferred ones); raises the driver's error if it fails.

        The first write of an event-loop iteration commits at once; writes of other tasks in
        the same iteration (many runs starting together) wait for the end of the iteration
        and share one commit (group commit), so a burst of writes costs about one transaction.
        """
        loop = asyncio.get_running_loop()
        if self._join_group(loop):
            await self._in_group(loop, name, params)
            return
        item: _Item = (name, params, None)
        batch = [*self._take_deferred(), item]
        if self._commit_inline(batch):
            return
        for deferred in batch[:-1]:
            self._put(deferred)
        future: asyncio.Future[None] = loop.create_future()
        self._put((name, params, future))
        await future

    def defer(self, name: str, params: Params, *, key: Hashable | None = None) -> None:
        """Queue a write nobody waits for (committed soon; a failure is logged).

        With a *key*, :meth:`replace_deferred` can swap the write for another one as long as
        it has not been taken for a commit.
        """
        if key is not None:
            self._deferred_at[key] = len(self._deferred)
        self._deferred.append((name, params, None))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._defer, self._on_timer)

    def replace_deferred(self, key: Hashable, name: str, params: Params) -> bool:
        """Swap the still-queued write deferred with *key* for (*name*, *params*), in place.

        False if there is none: it was committed meanwhile (or is being), and the caller must
        write its change as a new statement.
        """
        index = self._deferred_at.pop(key, None)
        if index is None:
            return False
        self._deferred[index] = (name, params, None)
        return True

    async def barrier(self) -> None:
        """Wait until every write queued before this call is committed (or has failed).

        Like :meth:`write`, barriers after the first commit of a loop iteration wait for the
        end of the iteration and share its commit.
        """
        loop = asyncio.get_running_loop()
        if self._deferred or self._group:
            if self._join_group(loop):
                await self._in_group(loop, _BARRIER, None)
            else:
                self._commit_group()
        with self._lock:
            if not self._thread_writes:
                return  # nothing is waiting on the thread: no hand-off needed
        future: asyncio.Future[None] = loop.create_future()
        self._put((_BARRIER, None, future))
        await future

    async def close(self) -> None:
        """Commit what is queued, end the thread, close the inline connection.

        The writer stays usable: it reconnects (and restarts the thread) on the next write.
        """
        await self.barrier()
        if self._timer is not None:  # nothing is deferred after the barrier
            self._timer.cancel()
            self._timer = None
        self._end_tick()  # the loop may close before its end-of-iteration callback runs
        with self._lock:
            thread = self._thread
            alive = thread is not None and thread.is_alive()
            if alive:
                self._queue.put((_STOP, None, None))
        if alive and thread is not None:
            await asyncio.to_thread(thread.join)
        with self._inline_lock:
            if self._inline is not None:
                self._inline.close()
                self._inline = None

    def _join_group(self, loop: asyncio.AbstractEventLoop) -> bool:
        """True: wait for the group commit at the end of this loop iteration, because another
        task has already committed in it (a burst). False: commit now (and mark the iteration)."""
        task = asyncio.current_task()
        if self._tick_loop is loop:
            return self._tick_task is not task
        if self._tick_loop is None:
            self._tick_loop = loop
            loop.call_soon(self._end_tick)
        self._tick_task = task
        return False

    async def _in_group(
        self, loop: asyncio.AbstractEventLoop, name: str, params: Params | None
    ) -> None:
        """Join this iteration's group (a write, or a :data:`_BARRIER`) and wait for its commit."""
        future: asyncio.Future[None] = loop.create_future()
        self._group.append((name, params, future))
        if len(self._group) == 1:
            loop.call_soon(self._commit_group)
        await future

    def _end_tick(self) -> None:
        self._tick_loop = None
        self._tick_task = None

    def _commit_group(self) -> None:
        """Commit the deferred writes and this iteration's group; wake its writers and barriers.

        If the inline commit cannot be made, everything goes to the thread in order: each
        writer then gets its own outcome, and each barrier waits there behind the writes.
        """
        group, self._group = self._group, []
        deferred = self._take_deferred()
        writes = [*deferred, *(item for item in group if item[0] != _BARRIER)]
        if not writes or self._commit_inline(writes):
            for _, _, future in group:
                assert future is not None
                _settle(future, None)
            return
        for item in [*deferred, *group]:
            self._put(item)

    def _on_timer(self) -> None:
        self._timer = None
        self._commit_group()

    def _take_deferred(self) -> list[_Item]:
        # The timer is left to fire (and find nothing): cancelling and re-arming it for every
        # run cost more than the one idle wake-up per DEFER_SECONDS.
        taken, self._deferred = self._deferred, []
        self._deferred_at.clear()
        return taken

    def _commit_inline(self, batch: list[_Item]) -> bool:
        """Commit *batch* here and now if that needs no waiting; False: nothing was written."""
        if self._thread_writes or self._checkpointing:
            # Writes wait on the thread: these go behind them, so that writes commit in the
            # order they were made (a queued INSERT before the UPDATE of the same row). While
            # a checkpoint's second pass runs, writes go behind it too (see _checkpoint).
            return False
        if not self._inline_lock.acquire(blocking=False):
            return False  # another thread's loop is using the inline connection
        try:
            conn = self._inline
            if conn is None:
                try:
                    conn = self._inline = self._connect(inline=True)
                except sqlite3.Error:
                    return False
            try:
                if len(batch) == 1:  # one statement: atomic by itself, in autocommit mode
                    name, params, _ = batch[0]
                    conn.execute(self._statements[name], self._bind(name, params))
                else:
                    conn.execute("BEGIN IMMEDIATE")  # SQLITE_BUSY at once if a writer is busy
                    for name, params, _ in batch:
                        conn.execute(self._statements[name], self._bind(name, params))
                    conn.execute("COMMIT")
            except Exception:  # noqa: BLE001 - never leave the transaction (and lock) open
                # Busy, or one write fails: the thread redoes the batch with waiting and
                # each write alone, so every error reaches its own caller.
                _rollback(conn)
                return False
        finally:
            self._inline_lock.release()
        self._inline_commits += 1
        self._commits_unchecked += 1
        self._writes_unchecked += len(batch)
        if (
            self._commits_unchecked >= CHECKPOINT_EVERY
            or self._writes_unchecked >= self._checkpoint_writes
        ):
            self._commits_unchecked = self._writes_unchecked = 0
            self._checkpoints_queued += 1
            self._put((_CHECKPOINT, None, None))
        return True

    def _put(self, item: _Item) -> None:
        with self._lock:
            if item[0] not in _MARKERS:
                self._thread_writes += 1
            self._queue.put(item)
            thread = self._thread
            if thread is None or not thread.is_alive():  # not started, idle-ended, or forked
                thread = threading.Thread(
                    target=self._run, name="blockpilot-sqlite-writer", daemon=True
                )
                self._thread = thread
                thread.start()

    # -- writer thread ---------------------------------------------------------------------

    def _checkpoint(self, conn: sqlite3.Connection, requests: int = 1) -> None:
        """Copy the WAL into the database file, whole, so that the next write starts it over.

        A checkpoint that frames are appended to while it runs does not copy the WAL whole,
        and under steady writes the WAL would then never start over and grow without bound
        (docs/performance.md, round five). Holding writes back for the whole copy (and its
        fsyncs) stalled every caller for it: ~15-20 ms at concurrency 16, the p99 of HTTP
        calls (docs/performance.md, round seven). So the first pass copies while writes go
        on inline, and writes wait only for the second, which copies what they appended
        meanwhile. One checkpoint serves the *requests* queued while the thread was busy.
        """
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._checkpointing = True
            with self._inline_lock:  # an inline commit under way ends first
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._checkpoints += requests
        except sqlite3.Error as exc:
            logger.warning("WAL checkpoint failed", extra={"error": str(exc)})
        finally:
            self._checkpointing = False

    def _connect(self, *, inline: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path, timeout=30, isolation_level=None, check_same_thread=False
        )
        # The engine's pragmas (see storage.engine): the same durability and constraints.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        if inline:
            conn.execute("PRAGMA busy_timeout=0")  # never wait for a lock on the event loop
            conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints fsync: the thread does them
        else:
            conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                try:
                    batch = [self._queue.get(timeout=self._idle)]
                except queue.Empty:
                    with self._lock:
                        if self._queue.empty():
                            if self._thread is threading.current_thread():
                                self._thread = None
                            return
                    continue
                while len(batch) < _MAX_BATCH:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                writes = [item for item in batch if item[0] not in _MARKERS]
                errors: list[BaseException | None] = [None] * len(writes)
                if conn is None:
                    try:
                        conn = self._connect()
                    except Exception as exc:  # noqa: BLE001 - reported to every waiter
                        errors = [exc] * len(writes)
                if conn is not None and writes:
                    errors = self._commit(conn, writes)
                with self._lock:
                    self._thread_writes -= len(writes)
                for (name, _, future), error in zip(writes, errors, strict=True):
                    if future is not None:
                        self._notify(future, error)
                    elif error is not None:
                        logger.error(
                            "could not write to the database",
                            extra={
                                "statement": name,
                                "error": f"{type(error).__name__}: {error}",
                            },
                        )
                requests = sum(item[0] == _CHECKPOINT for item in batch)
                if conn is not None and requests:
                    self._checkpoint(conn, requests)
                for name, _, future in batch:
                    if name == _BARRIER and future is not None:
                        self._notify(future, None)
                if any(item[0] == _STOP for item in batch):
                    with self._lock:
                        if self._thread is threading.current_thread():
                            self._thread = None
                        leftover = not self._queue.empty()
                    if leftover:  # queued after the stop: a new thread takes it
                        self._put((_BARRIER, None, None))
                    return
        finally:
            if conn is not None:
                conn.close()

    def _commit(self, conn: sqlite3.Connection, writes: list[_Item]) -> list[BaseException | None]:
        """One transaction for the batch; if it fails, each write alone (errors stay its own)."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            for name, params, _ in writes:
                conn.execute(self._statements[name], self._bind(name, params))
            conn.execute("COMMIT")
            return [None] * len(writes)
        except Exception:  # noqa: BLE001 - retried one by one below
            _rollback(conn)
        return [self._one(conn, item) for item in writes]

    def _one(self, conn: sqlite3.Connection, item: _Item) -> BaseException | None:
        name, params, _ = item
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(self._statements[name], self._bind(name, params))
            conn.execute("COMMIT")
            return None
        except Exception as exc:  # noqa: BLE001 - handed to the waiter or logged
            _rollback(conn)
            return exc

    def _bind(self, name: str, params: Params | None) -> Params:
        processor = self._processors.get(name)
        return processor(params or {}) if processor is not None else (params or {})

    @staticmethod
    def _notify(future: asyncio.Future[None], error: BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            future.get_loop().call_soon_threadsafe(_settle, future, error)


class SQLiteReader:
    """Point reads of a SQLite file on the caller's thread, without ever waiting for a lock.

    For a hot lookup (the API key of every request) SQLAlchemy + aiosqlite costs ~0.7 ms of
    CPU in thread hand-offs; a read of one indexed row is ~10 µs. WAL readers do not wait for
    writers; in the rare cases where a read would wait (``busy_timeout`` is 0 here) or fail,
    :meth:`fetch_one` returns :data:`UNAVAILABLE` and the caller uses the engine instead.
    Every read sees every commit made before it (each is its own read transaction).
    """

    UNAVAILABLE: Any = object()

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def fetch_one(self, sql: str, params: Params | tuple[Any, ...]) -> Any:
        """The first row (a tuple) or None; :data:`UNAVAILABLE` if the engine must answer."""
        return self._fetch(sql, params, all_rows=False)

    def fetch_all(self, sql: str, params: Params | tuple[Any, ...]) -> Any:
        """Every row (tuples); :data:`UNAVAILABLE` if the engine must answer."""
        return self._fetch(sql, params, all_rows=True)

    def _fetch(self, sql: str, params: Params | tuple[Any, ...], *, all_rows: bool) -> Any:
        if not self._lock.acquire(blocking=False):
            return self.UNAVAILABLE  # another thread is reading: no waiting here
        try:
            if self._conn is None:
                conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA busy_timeout=0")
                conn.execute("PRAGMA query_only=ON")
                self._conn = conn
            cursor = self._conn.execute(sql, params)
            return cursor.fetchall() if all_rows else cursor.fetchone()
        except sqlite3.Error:
            return self.UNAVAILABLE
        finally:
            self._lock.release()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def bind_processors(
    table: Table, dialect: Dialect, columns: Mapping[str, str]
) -> Callable[[Mapping[str, Any]], Params]:
    """Convert parameters as SQLAlchemy would for *dialect* (datetimes, JSON, booleans).

    *columns* maps parameter names to the column whose type converts them (see
    :func:`column_processor`); other parameters pass through unchanged.
    """
    converters: dict[str, Callable[[Any], Any]] = {}
    for param, column in columns.items():
        process = column_processor(table, dialect, column)
        if process is not None:
            converters[param] = process

    def convert(params: Mapping[str, Any]) -> Params:
        out = dict(params)
        for param, process in converters.items():
            if param in out:
                out[param] = process(out[param])
        return out

    return convert


def column_processor(table: Table, dialect: Dialect, column: str) -> Callable[[Any], Any] | None:
    """How SQLAlchemy turns a value of *column* into the driver's for *dialect*; None: as is.

    The stored text is SQLAlchemy's, byte for byte, with two faster encoders: JSON by
    pydantic-core, ~4x faster than SQLAlchemy's ``json.dumps`` and as readable by it
    (compact, UTF-8 rather than ``\\u`` escapes; ``json.dumps`` takes what pydantic-core
    refuses, a lone surrogate), and a SQLite ``DATETIME`` of SQLAlchemy's default format by
    one ``%`` of a tuple (~0.5 µs against ~0.9 µs for its dictionary of fields).
    """
    col_type = table.c[column].type
    if _default_json(col_type, dialect):
        return _json_text
    impl = col_type.dialect_impl(dialect)
    process = impl.bind_processor(dialect)
    if (
        process is not None
        and isinstance(impl, SQLITE_DATETIME)
        and impl._storage_format == _SQLALCHEMY_DATETIME_FORMAT
    ):
        return _datetime_text(process)
    return process


_SQLALCHEMY_DATETIME_FORMAT = SQLITE_DATETIME._storage_format
_DATETIME_FORMAT = "%04d-%02d-%02d %02d:%02d:%02d.%06d"
"""SQLAlchemy's default SQLite ``DATETIME`` format, its fields by position."""


def _datetime_text(fallback: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def process(value: Any) -> Any:
        if type(value) is datetime:  # the time zone is ignored, as SQLAlchemy ignores it
            return _DATETIME_FORMAT % (
                value.year,
                value.month,
                value.day,
                value.hour,
                value.minute,
                value.second,
                value.microsecond,
            )
        return fallback(value)  # None, dates, subclasses, errors: SQLAlchemy's own answer

    return process


def _default_json(col_type: Any, dialect: Dialect) -> bool:
    """A JSON column that SQLAlchemy would encode with plain ``json.dumps`` (None as 'null')."""
    return (
        isinstance(col_type, sqltypes.JSON)
        and not col_type.none_as_null
        and getattr(dialect, "_json_serializer", None) is None
    )


def _json_text(value: Any) -> str:
    if value is None:
        return "null"  # JSON null, as SQLAlchemy writes None (none_as_null is off)
    try:
        # NaN and infinities as json.dumps writes them, so they read back as they were.
        return to_json(value, inf_nan_mode="constants").decode()
    except ValueError:  # e.g. a lone surrogate, which UTF-8 cannot carry
        return json.dumps(value)


def row_converter(table: Table, dialect: Dialect, columns: list[str]) -> Callable[[Any], Any]:
    """Raw driver rows (tuples of *columns*) to named rows with SQLAlchemy's result types
    (datetimes, JSON, booleans), as the engine would return them."""
    processors = [
        table.c[name].type.dialect_impl(dialect).result_processor(dialect, None) for name in columns
    ]
    row_type = collections.namedtuple("_Row", columns)  # type: ignore[misc]

    def convert(raw: Any) -> Any:
        return row_type(
            *(p(v) if p is not None else v for p, v in zip(processors, raw, strict=True))
        )

    return convert
