"""Start-up checks of the data folder and the database: refuse to run on damaged or
unwritable storage, with one clear error (exit code 5), rather than fail request by request.

- A SQLite file of 0 bytes is refused: SQLite would take it for a new, empty database and
  start with no users or credentials while the key file and workspace files remain.
- A SQLite file is checked with ``PRAGMA quick_check`` (every page and b-tree is read;
  about 0.1 s per 100 MB, see docs/storage.md), so damage anywhere in it (the header, the
  middle, the tail) stops start-up instead of turning into 500s later.
- Damage, a full disk or a read-only file met while migrating or writing this process's
  lease become :class:`~blockpilot.errors.StorageUnusableError` (see :func:`unusable_storage`).

PostgreSQL checks its own pages; only the write failures apply to it.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from blockpilot.errors import StorageUnusableError
from blockpilot.storage.engine import database_url, is_disk_full

QUICK_CHECK_PROBLEMS_SHOWN = 3
_RESTORE = "Restore it from a backup (docs/storage.md); blockpilot did not change it."


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite *url*; None for PostgreSQL, memory or URI databases."""
    parsed = database_url(url)
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return None
    return None if name.startswith("file:") else Path(name)


def check_database_file(url: str) -> None:
    """Before connecting: refuse a SQLite file that exists but is empty."""
    path = sqlite_path(url)
    if path is None:
        return
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return  # a new installation: the file is created, then migrated
    except OSError as exc:
        raise StorageUnusableError(
            f"The database file {path} cannot be read ({exc.strerror})."
        ) from None
    if size == 0:
        raise StorageUnusableError(
            f"The database file {path} is empty (0 bytes). Starting would begin a new, empty "
            "database while the key file and workspace files of the old one remain. "
            f"{_RESTORE} If this is a new installation with nothing stored yet, delete the "
            "empty file and start again."
        )


async def check_database(engine: AsyncEngine) -> None:
    """After migrating: a SQLite database must pass ``PRAGMA quick_check``."""
    if engine.dialect.name != "sqlite":
        return
    async with engine.connect() as conn:
        rows = [str(row[0]) for row in (await conn.execute(text("PRAGMA quick_check"))).all()]
    if rows != ["ok"]:
        shown = "; ".join(rows[:QUICK_CHECK_PROBLEMS_SHOWN])
        more = len(rows) - QUICK_CHECK_PROBLEMS_SHOWN
        raise StorageUnusableError(
            f"The database {engine.url.database} is damaged (SQLite integrity check: {shown}"
            f"{f'; and {more} more' if more > 0 else ''}). {_RESTORE}"
        )


_DAMAGED = ("not a database", "malformed", "corrupt")
_READ_ONLY = ("readonly", "read-only")


def unusable_storage(
    exc: BaseException, where: Path | str, folder: Path
) -> StorageUnusableError | None:
    """The start-up error for *exc*, if it means the storage cannot be used; else None.

    *where* names the database (file or URL without password) in the message; *folder* is
    the data folder, whose free space tells a full disk from a failing one.
    """
    io_error = any(
        isinstance(c, sqlite3.DatabaseError) and "disk i/o error" in str(c).lower()
        for c in _chain(exc)
    )
    # SQLite says "disk I/O error" when it cannot even map its shared-memory file.
    if is_disk_full(exc) or (io_error and _nearly_full(folder)):
        return StorageUnusableError(
            f"Storage is full: {where} cannot be written (no space left on the disk). Free "
            "space there (old workspace files, logs), then start again; nothing was changed."
        )
    if io_error:
        return StorageUnusableError(
            f"The database {where} cannot be read or written (disk I/O error): check the "
            "disk holding it, then start again."
        )
    for current in _chain(exc):
        if isinstance(current, OSError) and current.errno in (errno.EROFS, errno.EACCES):
            return StorageUnusableError(
                f"The data folder cannot be written ({current.strerror}: "
                f"{current.filename or where}). Make it writable, then start again."
            )
        if isinstance(current, sqlite3.DatabaseError):
            message = str(current).lower()
            if any(word in message for word in _DAMAGED):
                return StorageUnusableError(
                    f"The database {where} is damaged ({current}). {_RESTORE}"
                )
            if any(word in message for word in _READ_ONLY) or "unable to open" in message:
                return StorageUnusableError(
                    f"The database {where} cannot be opened for writing ({current}). Make the "
                    "file and its folder writable by this user, then start again."
                )
    return None


NEARLY_FULL_BYTES = 1024 * 1024
"""Free space below which a disk I/O error at start-up is taken for a full disk."""


def _nearly_full(folder: Path) -> bool:
    try:
        info = os.statvfs(folder)
    except OSError:
        return False
    return info.f_bavail * info.f_frsize < NEARLY_FULL_BYTES


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen):
        seen.append(current)
        context = None if current.__suppress_context__ else current.__context__
        current = getattr(current, "orig", None) or current.__cause__ or context
    return seen


def database_name(url: str) -> str:
    """How messages name the database: its file, or its URL without the password."""
    path = sqlite_path(url)
    return str(path) if path is not None else database_url(url).render_as_string(hide_password=True)
