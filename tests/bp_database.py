"""Which database the test suite runs on, and fresh PostgreSQL databases for each test.

By default every test gets its own SQLite file in its temporary home: a copy of one template
file, migrated once per test process (``SqliteTemplate``), so no test pays for running the
migrations (~100 ms each) and the copy is exactly what ``Pilot.open``'s migration would have
made. With
``BLOCKPILOT_TEST_DATABASE=postgresql`` and ``BLOCKPILOT_TEST_PG_URL`` (an admin URL such as
``postgresql://postgres@127.0.0.1:5432/postgres``) every test gets its own empty PostgreSQL
database instead (see ``.ci/run``).

Why copies of a template, made ahead: running the migrations costs ~140 ms, ``CREATE DATABASE
… TEMPLATE`` ~30 ms (it checkpoints), truncating every table ~6 ms. Truncating would share one
database between tests (a leftover task or a test opening two Pilots could see another test's
rows), so each test gets a real database of its own, copied from a template migrated once per
session; a background thread keeps a few copies ready and drops used ones, so a test rarely
waits for either.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

BACKEND = os.environ.get("BLOCKPILOT_TEST_DATABASE", "sqlite").strip().lower() or "sqlite"
PG_ADMIN_URL = os.environ.get("BLOCKPILOT_TEST_PG_URL", "").strip()

if BACKEND not in ("sqlite", "postgresql"):
    raise RuntimeError(f"BLOCKPILOT_TEST_DATABASE must be sqlite or postgresql, not {BACKEND!r}")
if BACKEND == "postgresql" and not PG_ADMIN_URL:
    raise RuntimeError(
        "BLOCKPILOT_TEST_DATABASE=postgresql needs BLOCKPILOT_TEST_PG_URL, an admin URL such as "
        "postgresql://postgres@127.0.0.1:5432/postgres (see .ci/run)"
    )

_PREFIX = "bpt"
_READY_AHEAD = 3

CURRENT_URL: str | None = None
"""The running test's PostgreSQL database URL (set by ``settings_factory``); None on SQLite."""
CURRENT_WORKSPACE_URL = "file:"
"""The running test's ``BLOCKPILOT_WORKSPACE_URL`` (set by ``settings_factory``)."""


def database_env() -> dict[str, str]:
    """What a child process needs to use the running test's database, if not the default.

    For tests that build a child's environment from scratch (``BLOCKPILOT_HOME`` and keys):
    ``env.update(database_env())``.
    """
    # Workspace files on the test's backend, as in its own Settings (tests/conftest.py);
    # for S3 the child also needs the test's AWS_* variables.
    env = {"BLOCKPILOT_WORKSPACE_URL": CURRENT_WORKSPACE_URL}
    if CURRENT_URL:
        env["BLOCKPILOT_DATABASE_URL"] = CURRENT_URL
    return env


def _plain_url(url: str) -> str:
    """``postgresql://…`` for asyncpg itself (it does not take SQLAlchemy's ``+driver``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sqlalchemy_url(url: str, database: str) -> str:
    """The blockpilot database URL (``postgresql+asyncpg://``) for *database* on *url*'s server."""
    return (
        make_url(url)
        .set(drivername="postgresql+asyncpg", database=database)
        .render_as_string(hide_password=False)
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SqliteTemplate:
    """A SQLite database file with the migrations applied, made on first use in this
    process, and copied (mode 0600, as blockpilot creates its database) for each test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._bytes: bytes | None = None

    def _migrated(self) -> bytes:
        if self._bytes is None:
            from blockpilot.storage.engine import create_engine, migrate

            path = self.folder / "template.db"

            async def make() -> None:
                engine = create_engine(f"sqlite+aiosqlite:///{path}")
                try:
                    await migrate(engine)
                    async with engine.connect() as conn:
                        # Everything into the main file: the copy is that file alone.
                        await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                finally:
                    await engine.dispose()

            _in_thread(make())
            self._bytes = path.read_bytes()
        return self._bytes

    def copy_to(self, database: Path) -> None:
        """Put a migrated database at *database*, unless a file is there already."""
        if database.exists():
            return
        data = self._migrated()
        database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)


class PostgresDatabases:
    """A template database with the migrations applied and a stream of fresh copies of it."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = _plain_url(admin_url)
        self.template = f"{_PREFIX}_{os.getpid()}_template"
        self._ready: queue.Queue[str] = queue.Queue()
        self._to_drop: queue.Queue[str] = queue.Queue()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._failure: BaseException | None = None
        self._counter = 0
        self._thread: threading.Thread | None = None

    # -- the test side -------------------------------------------------------------------

    def start(self) -> None:
        asyncio.run(self._create_template())
        self._thread = threading.Thread(target=self._run, name="pg-test-databases", daemon=True)
        self._thread.start()

    def acquire(self) -> str:
        """The name of a fresh, migrated, empty database for one test."""
        self._wake.set()
        while True:
            if self._failure is not None:
                raise RuntimeError(f"could not create a test database: {self._failure!r}")
            try:
                return self._ready.get(timeout=0.5)
            except queue.Empty:
                if self._thread is None or not self._thread.is_alive():
                    raise RuntimeError("the test-database thread stopped") from self._failure

    def release(self, name: str) -> None:
        self._to_drop.put(name)
        self._wake.set()

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        asyncio.run(self._drop_all_of_this_run())

    # -- the background thread -----------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._produce())
        except BaseException as exc:  # noqa: BLE001 - reported to the next acquire()
            self._failure = exc

    async def _produce(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url)
        try:
            while not self._stopping.is_set():
                while not self._to_drop.empty():
                    await conn.execute(
                        f'DROP DATABASE IF EXISTS "{self._to_drop.get()}" WITH (FORCE)'
                    )
                if self._ready.qsize() < _READY_AHEAD:
                    self._counter += 1
                    name = f"{_PREFIX}_{os.getpid()}_{self._counter}"
                    # FILE_COPY: a tiny template is fastest copied as files (WAL_LOG logs pages).
                    await conn.execute(
                        f'CREATE DATABASE "{name}" TEMPLATE "{self.template}" STRATEGY FILE_COPY'
                    )
                    self._ready.put(name)
                    continue
                self._wake.clear()
                await asyncio.get_running_loop().run_in_executor(None, self._wake.wait, 1.0)
        finally:
            await conn.close()

    async def _create_template(self) -> None:
        import asyncpg

        from blockpilot.storage.engine import create_engine, migrate

        conn = await asyncpg.connect(self.admin_url)
        try:
            await self._drop_stale(conn)
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{self.template}"')
        finally:
            await conn.close()
        engine = create_engine(sqlalchemy_url(self.admin_url, self.template))
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    async def _drop_stale(self, conn: Any) -> None:
        """Databases left by test runs that were killed (their pid is gone)."""
        names = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", f"{_PREFIX}\\_%"
        )
        for (name,) in names:
            parts = name.split("_")
            if len(parts) >= 3 and parts[1].isdigit() and not _pid_alive(int(parts[1])):
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def _drop_all_of_this_run(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url)
        try:
            names = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1",
                f"{_PREFIX}\\_{os.getpid()}\\_%",
            )
            for (name,) in names:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


# -- helpers for tests that look at what is stored ----------------------------------------


def is_postgresql(pilot: Any) -> bool:
    return bool(pilot.engine.dialect.name == "postgresql")


async def stored_bytes(pilot: Any) -> bytes:
    """Everything the database holds, as bytes, for canary sweeps.

    SQLite: the database file and its WAL (call after ``pilot.close()`` so all is written).
    PostgreSQL: every column of every table, read back as text (``bytea`` as raw bytes), so
    a secret stored anywhere, in any column type, shows up.
    """
    from pathlib import Path

    if not is_postgresql(pilot):
        home = Path(pilot.settings.home)
        return b"".join(p.read_bytes() for p in sorted(home.glob("blockpilot.db*")))
    import asyncpg

    url = make_url(pilot.engine.url.render_as_string(hide_password=False)).set(
        drivername="postgresql"
    )
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        )
        chunks: list[bytes] = []
        for table, column, data_type in columns:
            expression = f'"{column}"' if data_type == "bytea" else f'"{column}"::text'
            for (value,) in await conn.fetch(f'SELECT {expression} FROM "{table}"'):
                if value is not None:
                    chunks.append(
                        bytes(value) if isinstance(value, bytes | bytearray) else value.encode()
                    )
        return b"\n".join(chunks)
    finally:
        await conn.close()


class SyncDatabase:
    """Plain synchronous SQL on the test's database, for tests that poke at it from the side
    (as another process would): sqlite3 on SQLite, asyncpg in a thread of its own on PostgreSQL.

    Statements use ``?`` placeholders (turned into ``$1``… for PostgreSQL); write booleans as
    ``false``/``true`` and timestamps as aware ``datetime`` values, which both accept.

    Args:
        settings: The test's Settings (its ``effective_database_url`` says where).
    """

    def __init__(self, settings: Any) -> None:
        url = make_url(settings.effective_database_url)
        self.postgresql = url.get_backend_name() == "postgresql"
        self._url = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._path = url.database

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (committed) and return its rows."""
        return self.executemany(sql, [params])[0]

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
        """Run *sql* once per parameter tuple, in one transaction; the rows of each run."""
        if not self.postgresql:
            import sqlite3

            with sqlite3.connect(str(self._path), timeout=5) as db:
                return [
                    [tuple(r) for r in db.execute(sql, tuple(map(_sqlite_value, p)))] for p in rows
                ]
        return _in_thread(self._pg(_numbered(sql), rows))

    async def _pg(self, sql: str, rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
        import asyncpg

        conn = await asyncpg.connect(self._url)
        try:
            async with conn.transaction():
                return [[tuple(r) for r in await conn.fetch(sql, *params)] for params in rows]
        finally:
            await conn.close()


def _numbered(sql: str) -> str:
    parts = sql.split("?")
    return "".join(
        part + (f"${i + 1}" if i < len(parts) - 1 else "") for i, part in enumerate(parts)
    )


def _sqlite_value(value: Any) -> Any:
    from datetime import UTC, datetime

    if isinstance(value, datetime):  # as SQLAlchemy stores it on SQLite: UTC, no offset
        value = value.astimezone(UTC) if value.tzinfo else value
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _in_thread(coroutine: Any) -> Any:
    """Run *coroutine* to completion on a new event loop in another thread (callable from
    synchronous code, even inside a running loop)."""
    result: list[Any] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(coroutine))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            error.append(exc)

    thread = threading.Thread(target=run, name="sync-database")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
