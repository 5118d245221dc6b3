"""Database engine: one async SQLAlchemy engine, migrations applied on start."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InvalidRequestError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from blockpilot.errors import ConfigurationError

logger = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; busy_timeout waits instead of failing on locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """Create the async engine for *url* (``sqlite+aiosqlite`` or ``postgresql+asyncpg``)."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - any parse failure is a configuration mistake
        raise ConfigurationError(
            "BLOCKPILOT_DATABASE_URL is not a valid database URL; "
            "use sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user@host/db"
        ) from None
    try:
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            engine = create_async_engine(url, connect_args={"timeout": 30})
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            return engine
        return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    except (ImportError, NoSuchModuleError, InvalidRequestError) as exc:
        # A missing or sync-only driver is a configuration mistake, not a crash.
        raise ConfigurationError(
            "BLOCKPILOT_DATABASE_URL names a database driver that cannot be used "
            f"({parsed.drivername}: {type(exc).__name__}); use sqlite+aiosqlite:///path/to/file.db "
            "or postgresql+asyncpg://user@host/db with asyncpg installed"
        ) from None


def _upgrade(sync_connection: Any) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = sync_connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Apply pending Alembic migrations (idempotent)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
