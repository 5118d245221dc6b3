"""Database engine: one async SQLAlchemy engine, migrations applied on start.

Two backends, one SQL implementation: SQLite (``sqlite+aiosqlite``, the default, one machine)
and PostgreSQL (``postgresql+asyncpg``, any number of server processes). ``postgresql://`` and
``sqlite://`` URLs without a driver get the async driver added.

On PostgreSQL the pool checks each connection before use (``pool_pre_ping``), so after a
database restart the stale connections are replaced on their next checkout and the service
recovers by itself; connecting gives up after :data:`PG_CONNECT_TIMEOUT_SECONDS` and waiting
for a pooled connection after :data:`PG_POOL_TIMEOUT_SECONDS`, so a database that is down
makes requests fail fast (503, see :func:`is_database_unavailable`) instead of piling up.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    DBAPIError,
    InterfaceError,
    InvalidRequestError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from blockpilot.errors import ConfigurationError

logger = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

PG_POOL_SIZE = 10
"""Connections each process keeps open; with ``PG_MAX_OVERFLOW`` the most it opens is 30."""
PG_MAX_OVERFLOW = 20
PG_POOL_TIMEOUT_SECONDS = 10.0
PG_CONNECT_TIMEOUT_SECONDS = 5.0
PG_POOL_RECYCLE_SECONDS = 1800
# Any fixed 64-bit number: every blockpilot process migrating one database takes this lock,
# so two processes starting together do not both create the tables.
MIGRATION_LOCK_ID = 0x626C6F636B70696C  # "blockpil"

_ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; busy_timeout waits instead of failing on locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # LIKE is case-sensitive on PostgreSQL; make it so here too (workspace path prefixes).
    cursor.execute("PRAGMA case_sensitive_like=ON")
    cursor.close()


_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def _owner_only_database_files(database: Path) -> None:
    """Create the SQLite file readable by its owner only, and narrow existing ones.

    SQLite creates a database with the process umask (0644 usually) and gives its ``-wal``
    and ``-shm`` files the database file's mode, so creating the file 0600 first is enough
    for all three; a folder that already existed (its 0700 not applied) no longer leaves
    the credentials' ciphertexts world-readable. See docs/storage.md.
    """
    if database.name.startswith("file:"):
        return  # a URI filename: SQLite opens it, not us
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    for suffix in _SQLITE_COMPANIONS:
        path = database.with_name(database.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode) and mode & 0o077:
                path.chmod(0o600)


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, tuple):
        return tuple(_without_nul(v) for v in value)
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {k: _without_nul(v) for k, v in value.items()}
    return value


def _pg_no_nul_characters(
    _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _executemany: bool
) -> tuple[str, Any]:
    """PostgreSQL text cannot hold U+0000 (SQLite can): store and look up U+FFFD instead.

    Without this, any NUL that reaches a text column or a lookup (an id from a model's tool
    call, a block's error message) fails the whole statement, and with it a batch of
    execution results. JSON columns are unaffected (their NULs are escaped as ``\\u0000``).
    """
    return statement, _without_nul(parameters)


def database_url(url: str) -> URL:
    """*url* parsed, with the async driver filled in for a bare ``postgresql://`` or ``sqlite://``."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - any parse failure is a configuration mistake
        raise ConfigurationError(
            "BLOCKPILOT_DATABASE_URL is not a valid database URL; "
            "use sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user@host/db"
        ) from None
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


def create_engine(url: str) -> AsyncEngine:
    """Create the async engine for *url* (``sqlite+aiosqlite`` or ``postgresql+asyncpg``)."""
    parsed = database_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                _owner_only_database_files(Path(parsed.database))
            engine = create_async_engine(parsed, connect_args={"timeout": 30})
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            return engine
        if parsed.get_backend_name() == "postgresql":
            engine = create_async_engine(
                parsed,
                pool_pre_ping=True,
                pool_size=PG_POOL_SIZE,
                max_overflow=PG_MAX_OVERFLOW,
                pool_timeout=PG_POOL_TIMEOUT_SECONDS,
                pool_recycle=PG_POOL_RECYCLE_SECONDS,
                connect_args={
                    "timeout": PG_CONNECT_TIMEOUT_SECONDS,
                    "server_settings": {"application_name": "blockpilot"},
                },
            )
            event.listen(
                engine.sync_engine, "before_cursor_execute", _pg_no_nul_characters, retval=True
            )
            return engine
        return create_async_engine(parsed, pool_pre_ping=True)
    except (ImportError, NoSuchModuleError, InvalidRequestError) as exc:
        # A missing or sync-only driver is a configuration mistake, not a crash.
        raise ConfigurationError(
            "BLOCKPILOT_DATABASE_URL names a database driver that cannot be used "
            f"({parsed.drivername}: {type(exc).__name__}); use sqlite+aiosqlite:///path/to/file.db "
            "or postgresql+asyncpg://user@host/db with asyncpg installed"
        ) from None


def is_postgresql(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether *exc* means "the database cannot be reached now" (answer 503, retry later).

    Covers refused or dropped connections, a server shutting down or starting up, pool and
    connect timeouts, and SQLite's "database is locked" after its busy timeout; not SQL or
    constraint errors, which are bugs or conflicts. Plain network errors and timeouts count
    only when raised through the database driver (not, say, a block's own HTTP call).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, PoolTimeoutError):
            return True
        if isinstance(current, OperationalError | InterfaceError):
            original = getattr(current, "orig", None)
            if type(original).__module__ != "sqlite3":
                return True
            # SQLite: busy or unreachable file, yes; "no such table" and the like are bugs.
            return any(word in str(original).lower() for word in _SQLITE_UNAVAILABLE)
        if (
            type(current).__module__.startswith("asyncpg")
            and type(current).__name__ in _ASYNCPG_UNAVAILABLE
        ):
            return True
        if isinstance(current, OSError | asyncio.TimeoutError) and _raised_by_database_driver(
            current
        ):
            return True  # refused, reset, unreachable, timed out while connecting or querying
        current = current.__cause__ or current.__context__
    return False


_SQLITE_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o", "disk is full")


def is_disk_full(exc: BaseException) -> bool:
    """Whether *exc* (or what caused it) says the disk or the database is full: SQLite's
    ``SQLITE_FULL``, PostgreSQL's ``disk_full`` (53100), or ``ENOSPC``/``EDQUOT``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "disk is full" in str(current).lower() or getattr(current, "sqlstate", "") == "53100":
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


_DRIVER_MODULES = ("sqlalchemy.", "asyncpg.", "aiosqlite.", "blockpilot.storage.")


def _raised_by_database_driver(exc: BaseException) -> bool:
    traceback = exc.__traceback__
    while traceback is not None:
        module = str(traceback.tb_frame.f_globals.get("__name__", ""))
        if module.startswith(_DRIVER_MODULES):
            return True
        traceback = traceback.tb_next
    return False


_ASYNCPG_UNAVAILABLE = frozenset(
    {
        "CannotConnectNowError",  # starting up / shutting down
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "AdminShutdownError",
        "CrashShutdownError",
        "TooManyConnectionsError",
        "InterfaceError",
        "ConnectionRejectionError",
        "InternalClientError",
    }
)


def _upgrade(sync_connection: Any) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = sync_connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Apply pending Alembic migrations (idempotent; safe when several processes start at once)."""
    async with _sqlite_migration_lock(engine), engine.begin() as conn:
        if is_postgresql(engine):
            # Held until this transaction ends; PostgreSQL's DDL is transactional, so a second
            # process waits here and then finds the schema at head.
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_ID}
            )
        await conn.run_sync(_upgrade)


@contextlib.asynccontextmanager
async def _sqlite_migration_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """On a SQLite file, one process migrates at a time (a CLI command started beside the server
    on a new home would otherwise race it to create the tables)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(
        f"{database}.migrate-lock", os.O_CREAT | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o600
    )
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
