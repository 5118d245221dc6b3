"""The workspace file API: atomic writes, checksums, size limits, no escape."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import mimetypes
import os
import re
import secrets
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

from blockpilot.errors import (
    QuotaExceededError,
    WorkspaceError,
    WorkspaceFileNotFoundError,
    WorkspaceQuotaError,
)
from blockpilot.locks import InProcessLockManager
from blockpilot.storage.engine import is_disk_full
from blockpilot.storage.workspaces import WorkspaceStore
from blockpilot.workspaces.models import Workspace, WorkspaceFile
from blockpilot.workspaces.paths import normalise_path, normalise_prefix

logger = logging.getLogger(__name__)

_OPEN_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _OPEN_FLAGS
_READ_ATTEMPTS = 5
CHUNK_BYTES = 1024 * 1024
"""Pieces in which streamed reads hand out a file."""
TEMP_FILE_MAX_AGE_SECONDS = 3600.0
"""Temp blobs untouched this long are orphans of a killed writer (see :func:`sweep_temp_files`)."""


def _new_blob_name() -> str:
    return secrets.token_hex(16)


def _temp_name(name: str) -> str:
    return f".{name}.tmp"


# Exactly the names _temp_name gives blob names: nothing else is ever swept.
_TEMP_NAME = re.compile(r"\.[0-9a-f]{32}\.tmp")


def _open_dir(directory: Path, *, create: bool) -> int:
    """Open a workspace's blob directory itself: never a symlink put in its place.

    Blobs are then created, renamed, read and removed relative to this descriptor, so
    swapping the directory for a symlink at any later moment cannot redirect them.
    """
    if create:
        directory.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
    try:
        return os.open(directory, _DIR_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise WorkspaceError(
                "The workspace's storage directory is not a plain directory (a symbolic link?); "
                "nothing was read or written"
            ) from None
        raise


def _write_blob(directory: Path, name: str, data: bytes) -> None:
    dir_fd = _open_dir(directory, create=True)
    try:
        tmp = _temp_name(name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
    finally:
        os.close(dir_fd)


def _storage_error(exc: OSError) -> WorkspaceError:
    reason = exc.strerror or type(exc).__name__
    return WorkspaceError(f"The file could not be stored ({reason}); nothing was written")


class _BlobSink:
    """A blob written piece by piece: temp file, then fsync and rename (see ``_write_blob``)."""

    def __init__(self, directory: Path, name: str) -> None:
        self._name = name
        self._tmp = _temp_name(name)
        self._dir_fd = _open_dir(directory, create=True)
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS
            fd = os.open(self._tmp, flags, 0o600, dir_fd=self._dir_fd)
        except BaseException:
            os.close(self._dir_fd)
            raise
        self._file = os.fdopen(fd, "wb")
        self.size = 0
        self.digest = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self.size += len(chunk)
        self.digest.update(chunk)

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self._name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
        os.close(self._dir_fd)

    def abort(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp, dir_fd=self._dir_fd)
        with contextlib.suppress(OSError):
            os.close(self._dir_fd)


def _read_blob(directory: Path, name: str) -> bytes:
    dir_fd = _open_dir(directory, create=False)
    try:
        fd = os.open(name, os.O_RDONLY | _OPEN_FLAGS, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _open_blob(directory: Path, name: str) -> BinaryIO:
    dir_fd = _open_dir(directory, create=False)
    try:
        fd = os.open(name, os.O_RDONLY | _OPEN_FLAGS, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    return os.fdopen(fd, "rb")


def _checksum_and_rewind(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(CHUNK_BYTES):
        digest.update(chunk)
    handle.seek(0)
    return digest.hexdigest()


def _remove_blob(directory: Path, name: str) -> None:
    try:
        dir_fd = _open_dir(directory, create=False)
    except (WorkspaceError, FileNotFoundError):
        return  # nothing of ours to remove there
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def _sweep_directory(dir_fd: int, cutoff: float) -> int:
    removed = 0
    with os.scandir(dir_fd) as entries:
        for entry in entries:
            if not _TEMP_NAME.fullmatch(entry.name):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode) or info.st_mtime >= cutoff:
                    continue
                os.unlink(entry.name, dir_fd=dir_fd)
            except FileNotFoundError:
                continue  # its writer finished (renamed it) or another sweep removed it
            removed += 1
    return removed


def sweep_temp_files(root: Path, *, max_age_seconds: float = TEMP_FILE_MAX_AGE_SECONDS) -> int:
    """Remove temp blobs left behind by writers that were killed mid-write (``SIGKILL``).

    Only regular files named as the writer names its temp files (``.<32 hex>.tmp``) directly
    inside a workspace's blob directory (``root/<workspace id>/``), and only when their
    modification time is older than *max_age_seconds*: a live writer touches its file with
    every piece it writes, so a file that old has no writer (in this process or another
    sharing *root*). Blobs, symlinks and anything else are left alone. Failures are logged,
    never raised: a sweep must not stop the service from starting.

    Returns:
        How many temp files were removed (also logged at INFO when any were).
    """
    cutoff = time.time() - max_age_seconds
    removed = 0
    try:
        with os.scandir(root) as entries:
            names = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return 0
    except OSError as exc:
        logger.warning("workspace temp file sweep skipped", extra={"error": exc.strerror})
        return 0
    for name in names:
        try:
            dir_fd = _open_dir(root / name, create=False)
        except (OSError, WorkspaceError):
            continue  # gone, or no longer a plain directory
        try:
            removed += _sweep_directory(dir_fd, cutoff)
        except OSError as exc:
            logger.warning(
                "workspace temp file sweep failed for one workspace",
                extra={"workspace_id": name, "error": exc.strerror},
            )
        finally:
            os.close(dir_fd)
    if removed:
        logger.info("removed orphan workspace temp files", extra={"count": removed})
    return removed


class WorkspaceManager:
    """Files of every user's workspace.

    Bytes are stored as blobs named by random ids under ``root/<workspace id>/``; the
    virtual path is only a database row. A write lands the blob first (temp file, fsync,
    rename) and then switches the row, so a crash never leaves a half-written file. Temp
    files of writers killed mid-write (``SIGKILL``: no cleanup runs) are swept when the
    manager opens, by :func:`sweep_temp_files`.

    *max_workspace_bytes* (0: none) is each workspace's quota, so one user cannot fill the
    disk that every user's files and the database share (docs/configuration.md).
    """

    def __init__(
        self,
        store: WorkspaceStore,
        root: Path,
        *,
        max_file_bytes: int,
        max_workspace_bytes: int = 0,
        temp_file_max_age_seconds: float = TEMP_FILE_MAX_AGE_SECONDS,
    ) -> None:
        self._store = store
        self._root = root
        self.max_file_bytes = max_file_bytes
        self.max_workspace_bytes = max_workspace_bytes
        self.swept_temp_files = sweep_temp_files(root, max_age_seconds=temp_file_max_age_seconds)
        # Writers of one path in this process take turns; other processes are handled by
        # the store's compare-and-swap retries.
        self._path_locks = InProcessLockManager()

    async def get_or_create_workspace(self, user_id: str) -> Workspace:
        return await self._store.get_or_create(user_id)

    def for_workspace(self, workspace: Workspace) -> WorkspaceFiles:
        return WorkspaceFiles(self, workspace)

    def _blob_dir(self, workspace_id: str) -> Path:
        return self._root / workspace_id


class WorkspaceFiles:
    """The file API of one workspace; what blocks and front doors use."""

    def __init__(self, manager: WorkspaceManager, workspace: Workspace) -> None:
        self._manager = manager
        self._store = manager._store
        self.workspace = workspace

    @property
    def workspace_id(self) -> str:
        return self.workspace.id

    async def write(
        self, path: str, content: bytes | str, *, mime_type: str | None = None
    ) -> WorkspaceFile:
        """Create or replace the file at *path* atomically."""
        virtual = normalise_path(path)
        try:
            data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        except UnicodeEncodeError:
            raise WorkspaceError(
                "The text is not valid Unicode (it holds a lone surrogate); nothing was written"
            ) from None
        limit = self._manager.max_file_bytes
        if len(data) > limit:
            raise WorkspaceQuotaError(
                f"File is {len(data)} bytes; the limit is {limit} bytes. Write a smaller file.",
                details={"size_bytes": len(data), "limit_bytes": limit},
            )
        room = await self._room(virtual)
        if room is not None and len(data) > room:
            raise self._over_quota(room)
        mime = (
            mime_type
            or mimetypes.guess_type(virtual)[0]
            or ("text/plain" if isinstance(content, str) else "application/octet-stream")
        )
        blob = _new_blob_name()
        directory = self._manager._blob_dir(self.workspace.id)
        try:
            await asyncio.to_thread(_write_blob, directory, blob, data)
        except OSError as exc:  # disk full, read-only, quota: a typed error, no partial file
            raise _storage_error(exc) from None
        checksum = hashlib.sha256(data).hexdigest()
        return await self._point_at(virtual, blob, len(data), checksum, mime)

    async def write_stream(
        self, path: str, chunks: AsyncIterator[bytes], *, mime_type: str | None = None
    ) -> WorkspaceFile:
        """Like :meth:`write` for content that arrives in pieces (an upload): it goes to
        disk as it comes, so memory stays one chunk whatever the file's size."""
        virtual = normalise_path(path)
        limit = self._manager.max_file_bytes
        room = await self._room(virtual)
        mime = mime_type or mimetypes.guess_type(virtual)[0] or "application/octet-stream"
        blob = _new_blob_name()
        directory = self._manager._blob_dir(self.workspace.id)
        try:
            sink = await asyncio.to_thread(_BlobSink, directory, blob)
        except OSError as exc:
            raise _storage_error(exc) from None
        try:
            async for chunk in chunks:
                if sink.size + len(chunk) > limit:
                    raise WorkspaceQuotaError(
                        f"File is larger than the limit of {limit} bytes. Write a smaller file.",
                        details={"limit_bytes": limit},
                    )
                if room is not None and sink.size + len(chunk) > room:
                    raise self._over_quota(room)  # counted as it streams: refused mid-way
                if chunk:
                    await asyncio.to_thread(sink.write, chunk)
            await asyncio.to_thread(sink.commit)
        except OSError as exc:
            await asyncio.to_thread(sink.abort)
            raise _storage_error(exc) from None
        except BaseException:
            await asyncio.to_thread(sink.abort)
            raise
        return await self._point_at(virtual, blob, sink.size, sink.digest.hexdigest(), mime)

    async def _room(self, virtual: str) -> int | None:
        """Bytes a file at *virtual* may have within the quota (what it replaces is freed),
        or None without a quota. A first, early answer: the store has the last word."""
        quota = self._manager.max_workspace_bytes
        if not quota:
            return None
        used = await self._store.bytes_used(self.workspace.id, except_path=virtual)
        return max(quota - used, 0)

    def _over_quota(self, room: int) -> QuotaExceededError:
        quota = self._manager.max_workspace_bytes
        return QuotaExceededError(
            f"The workspace is over its quota of {quota} bytes ({room} bytes left). "
            "Delete files you no longer need, or write a smaller file; nothing was written.",
            details={"quota_bytes": quota, "available_bytes": room},
        )

    async def _point_at(
        self, virtual: str, blob: str, size: int, checksum: str, mime: str
    ) -> WorkspaceFile:
        """Switch the row of *virtual* to the written *blob* (and drop the blob it replaced)."""
        directory = self._manager._blob_dir(self.workspace.id)
        try:
            async with self._manager._path_locks.hold(f"{self.workspace.id}:{virtual}"):
                record, old_blob = await self._store.upsert_file(
                    self.workspace.id,
                    virtual,
                    blob=blob,
                    size_bytes=size,
                    checksum=checksum,
                    mime_type=mime,
                    quota_bytes=self._manager.max_workspace_bytes,
                )
        except BaseException:
            _remove_blob(directory, blob)
            raise
        if old_blob is not None:
            _remove_blob(directory, old_blob)
        return record

    async def _located(self, path: str) -> tuple[WorkspaceFile, str]:
        found = await self._store.file_by_path(self.workspace.id, normalise_path(path))
        if found is None:
            raise WorkspaceFileNotFoundError(
                f"No file at {normalise_path(path)!r} in the workspace"
            )
        return found

    async def info(self, path: str) -> WorkspaceFile:
        return (await self._located(path))[0]

    async def read(self, path: str) -> bytes:
        normalise_path(path)  # a bad path is a path error, before any lookup
        return (await self._read_current(lambda: self._located(path)))[1]

    async def read_by_id(self, file_id: str) -> tuple[WorkspaceFile, bytes]:
        async def lookup() -> tuple[WorkspaceFile, str]:
            found = await self._store.file_by_id(self.workspace.id, file_id)
            if found is None:
                raise WorkspaceFileNotFoundError(f"No file with id {file_id!r} in the workspace")
            return found

        return await self._read_current(lookup)

    async def open_verified(self, path: str) -> tuple[WorkspaceFile, BinaryIO]:
        """The file at *path* and an open handle on its data, checksum-verified before it is
        returned, to stream (read :data:`CHUNK_BYTES` at a time) in bounded memory. Blobs are
        never changed in place, so what the handle reads is what was verified. The caller
        closes the handle."""
        normalise_path(path)
        directory = self._manager._blob_dir(self.workspace.id)
        for _ in range(_READ_ATTEMPTS):
            record, blob = await self._located(path)
            try:
                handle = await asyncio.to_thread(_open_blob, directory, blob)
            except FileNotFoundError:
                continue  # replaced meanwhile: look again
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                raise WorkspaceFileNotFoundError(
                    f"File {record.path!r} is damaged (its data is not a regular file)"
                ) from None
            try:
                checksum = await asyncio.to_thread(_checksum_and_rewind, handle)
            except BaseException:
                handle.close()
                raise
            if checksum != record.checksum:
                handle.close()
                raise WorkspaceFileNotFoundError(
                    f"File {record.path!r} is damaged (checksum mismatch)"
                )
            return record, handle
        raise WorkspaceFileNotFoundError(
            f"File {normalise_path(path)!r} is damaged (its data is missing)"
        )

    async def _read_current(
        self, lookup: Callable[[], Awaitable[tuple[WorkspaceFile, str]]]
    ) -> tuple[WorkspaceFile, bytes]:
        # A concurrent overwrite may delete the blob between looking the row up and opening
        # it; the row then names a newer blob, so look again.
        for _ in range(_READ_ATTEMPTS):
            record, blob = await lookup()
            try:
                return record, await self._read_checked(record, blob)
            except FileNotFoundError:
                continue
        raise WorkspaceFileNotFoundError(f"File {record.path!r} is damaged (its data is missing)")

    async def _read_checked(self, record: WorkspaceFile, blob: str) -> bytes:
        try:
            directory = self._manager._blob_dir(self.workspace.id)
            data = await asyncio.to_thread(_read_blob, directory, blob)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            # The blob was replaced by a symlink: never followed, and the file is unusable.
            raise WorkspaceFileNotFoundError(
                f"File {record.path!r} is damaged (its data is not a regular file)"
            ) from None
        if hashlib.sha256(data).hexdigest() != record.checksum:
            raise WorkspaceFileNotFoundError(f"File {record.path!r} is damaged (checksum mismatch)")
        return data

    async def list(
        self, prefix: str | None = None, *, limit: int = 1000, offset: int = 0
    ) -> list[WorkspaceFile]:
        return await self._store.list_files(
            self.workspace.id,
            normalise_prefix(prefix),
            limit=min(max(limit, 1), 10_000),
            offset=max(offset, 0),
        )

    async def delete(self, path: str) -> bool:
        """Delete the file at *path*; False if there is none. Works on a full disk too."""
        virtual = normalise_path(path)
        directory = self._manager._blob_dir(self.workspace.id)
        try:
            blob = await self._store.delete_file(self.workspace.id, virtual)
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            # Even a delete must be logged by the database (its WAL grows): on a full disk,
            # free the file's own bytes first, then record the delete. Should that still
            # fail, the row is left naming missing data (read as damaged) until a retry.
            found = await self._store.file_by_path(self.workspace.id, virtual)
            if found is None:
                return False
            await asyncio.to_thread(_remove_blob, directory, found[1])
            blob = await self._store.delete_file(self.workspace.id, virtual)
        if blob is None:
            return False
        await asyncio.to_thread(_remove_blob, directory, blob)
        return True
