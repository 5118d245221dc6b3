"""The ``file:`` backend: blobs in the local folder ``HOME/workspaces/<workspace id>/``.

Every blob is created, renamed, read and removed relative to a descriptor of its workspace's
directory opened with ``O_NOFOLLOW|O_DIRECTORY``, so a symlink planted anywhere is never
followed; a blob is written to a temp file, fsynced and renamed into place.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import stat
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from blockpilot.errors import WorkspaceError
from blockpilot.workspaces.blobs import CHUNK_BYTES, BlobReader, BlobStorage, BlobWriter

logger = logging.getLogger(__name__)

_OPEN_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _OPEN_FLAGS
TEMP_FILE_MAX_AGE_SECONDS = 3600.0
"""Temp blobs untouched this long are orphans of a killed writer (see :func:`sweep_temp_files`)."""


def _temp_name(name: str) -> str:
    return f".{name}.tmp"


# Exactly the names _temp_name gives blob names: nothing else is ever swept.
_TEMP_NAME = re.compile(r"\.[0-9a-f]{32}\.tmp")
_BLOB_NAME = re.compile(r"[0-9a-f]{32}")


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


class _BlobSink:
    """A blob written piece by piece: temp file, then fsync and rename."""

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

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)

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


def _open_blob(directory: Path, name: str) -> BinaryIO:
    dir_fd = _open_dir(directory, create=False)
    try:
        fd = os.open(name, os.O_RDONLY | _OPEN_FLAGS, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    return os.fdopen(fd, "rb")


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


def _blobs_older_than(root: Path, cutoff: float) -> list[tuple[str, str]]:
    """(workspace id, blob) of the regular files named as blobs, modified before *cutoff*."""
    found: list[tuple[str, str]] = []
    try:
        with os.scandir(root) as entries:
            names = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return found
    for name in names:
        try:
            dir_fd = _open_dir(root / name, create=False)
        except (OSError, WorkspaceError):
            continue
        try:
            with os.scandir(dir_fd) as entries:
                for entry in entries:
                    if not _BLOB_NAME.fullmatch(entry.name):
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        info = entry.stat(follow_symlinks=False)
                        if stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff:
                            found.append((name, entry.name))
        finally:
            os.close(dir_fd)
    return found


class _LocalWriter(BlobWriter):
    def __init__(self, sink: _BlobSink) -> None:
        super().__init__()
        self._sink = sink

    async def _write(self, chunk: bytes) -> None:
        await asyncio.to_thread(self._sink.write, chunk)

    async def commit(self) -> None:
        await asyncio.to_thread(self._sink.commit)

    async def abort(self) -> None:
        await asyncio.to_thread(self._sink.abort)


class _LocalReader(BlobReader):
    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    async def read(self) -> bytes:
        return await asyncio.to_thread(self._handle.read, CHUNK_BYTES)

    async def rewind(self) -> None:
        await asyncio.to_thread(self._handle.seek, 0)

    async def aclose(self) -> None:
        self._handle.close()


class LocalBlobStorage(BlobStorage):
    """Blobs as files under *root* (one directory per workspace); temp files of writers
    killed mid-write are swept when it is created (see :func:`sweep_temp_files`)."""

    url = "file:"

    def __init__(
        self, root: Path, *, temp_file_max_age_seconds: float = TEMP_FILE_MAX_AGE_SECONDS
    ) -> None:
        self.root = root
        self.swept_temp_files = sweep_temp_files(root, max_age_seconds=temp_file_max_age_seconds)

    async def writer(self, workspace_id: str, blob: str) -> BlobWriter:
        return _LocalWriter(await asyncio.to_thread(_BlobSink, self.root / workspace_id, blob))

    async def open(self, workspace_id: str, blob: str) -> BlobReader:
        # ELOOP (the blob is a symlink) is left to the caller: it reads as a damaged file.
        return _LocalReader(await asyncio.to_thread(_open_blob, self.root / workspace_id, blob))

    async def delete(self, workspace_id: str, blob: str) -> None:
        await asyncio.to_thread(_remove_blob, self.root / workspace_id, blob)

    async def blobs_older_than(self, cutoff: datetime) -> AsyncIterator[tuple[str, str]]:
        for found in await asyncio.to_thread(_blobs_older_than, self.root, cutoff.timestamp()):
            yield found

    async def exists(self, workspace_id: str, blob: str) -> bool:
        try:
            reader = await self.open(workspace_id, blob)
        except FileNotFoundError:
            return False
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            return False
        await reader.aclose()
        return True
