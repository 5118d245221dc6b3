"""The workspace file API: atomic writes, checksums, size limits, no escape."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import mimetypes
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from blockpilot.errors import (
    QuotaExceededError,
    WorkspaceError,
    WorkspaceFileNotFoundError,
    WorkspaceQuotaError,
)
from blockpilot.locks import InProcessLockManager
from blockpilot.storage.engine import is_disk_full
from blockpilot.storage.workspaces import WorkspaceStore
from blockpilot.workspaces.blobs import CHUNK_BYTES, BlobReader, BlobStorage, BlobWriter, one_piece
from blockpilot.workspaces.local_blobs import (
    TEMP_FILE_MAX_AGE_SECONDS,
    LocalBlobStorage,
    sweep_temp_files,
)
from blockpilot.workspaces.models import ChangeKind, Workspace, WorkspaceChange, WorkspaceFile
from blockpilot.workspaces.paths import normalise_path, normalise_prefix

__all__ = [
    "CHUNK_BYTES",
    "TEMP_FILE_MAX_AGE_SECONDS",
    "WorkspaceFiles",
    "WorkspaceManager",
    "sweep_temp_files",
]

logger = logging.getLogger(__name__)

_READ_ATTEMPTS = 5


def _new_blob_name() -> str:
    return secrets.token_hex(16)


def _storage_error(exc: BaseException) -> WorkspaceError | None:
    """A failure of the backend while storing, as the typed error callers get (or None)."""
    if isinstance(exc, WorkspaceError):
        return exc
    if isinstance(exc, OSError):  # disk full, read-only, quota
        reason = exc.strerror or type(exc).__name__
        return WorkspaceError(f"The file could not be stored ({reason}); nothing was written")
    if isinstance(exc, Exception) and is_disk_full(exc):
        return WorkspaceError(
            "The file could not be stored (the disk is full); nothing was written"
        )
    return None


class WorkspaceManager:
    """Files of every user's workspace.

    Bytes are stored as blobs named by random ids on a :class:`BlobStorage` backend (a
    *storage* given as a path is the local folder, ``root/<workspace id>/``); the virtual
    path is only a database row. A write lands a new blob completely first and then
    switches the row, so a crash never leaves a half-written file. What writers killed
    mid-write (``SIGKILL``: no cleanup runs) leave behind is swept when the local folder
    opens (:func:`sweep_temp_files`) or by :meth:`start` (the database backend).

    *max_workspace_bytes* (0: none) is each workspace's quota, so one user cannot fill the
    disk that every user's files and the database share (docs/configuration.md).
    """

    def __init__(
        self,
        store: WorkspaceStore,
        storage: Path | BlobStorage,
        *,
        max_file_bytes: int,
        max_workspace_bytes: int = 0,
        temp_file_max_age_seconds: float = TEMP_FILE_MAX_AGE_SECONDS,
    ) -> None:
        self._store = store
        if isinstance(storage, Path):
            storage = LocalBlobStorage(storage, temp_file_max_age_seconds=temp_file_max_age_seconds)
        self.blobs: BlobStorage = storage
        self.max_file_bytes = max_file_bytes
        self.max_workspace_bytes = max_workspace_bytes
        self.swept_temp_files = getattr(storage, "swept_temp_files", 0)
        # Writers of one path in this process take turns; other processes are handled by
        # the store's compare-and-swap retries.
        self._path_locks = InProcessLockManager()
        self._watchers: dict[object, Callable[[WorkspaceChange], None]] = {}

    def watch(self, listener: Callable[[WorkspaceChange], None]) -> Callable[[], None]:
        """Call *listener* (synchronously, on the writer's event loop) after every file
        created, rewritten or deleted through this manager; returns the function that stops
        it. Changes made by other processes are not seen here (docs/mcp.md#subscriptions)."""
        token = object()
        self._watchers[token] = listener

        def stop() -> None:
            self._watchers.pop(token, None)

        return stop

    def _announce(self, change: WorkspaceChange) -> None:
        for listener in list(self._watchers.values()):
            try:
                listener(change)
            except Exception:  # a listener never fails the write that was already made
                logger.exception("Workspace change listener failed")

    async def get_or_create_workspace(self, user_id: str) -> Workspace:
        return await self._store.get_or_create(user_id)

    def for_workspace(self, workspace: Workspace) -> WorkspaceFiles:
        return WorkspaceFiles(self, workspace)

    async def start(self) -> int:
        """Check that the backend is the one recorded as holding the files (refusing with
        :class:`~blockpilot.errors.ConfigurationError` if not), then sweep what writers killed
        mid-write left on it; returns how many blobs were swept."""
        await self._store.check_backend(self.blobs.url)
        return await self.blobs.start()

    async def aclose(self) -> None:
        await self.blobs.aclose()


class WorkspaceFiles:
    """The file API of one workspace; what blocks and front doors use."""

    def __init__(self, manager: WorkspaceManager, workspace: Workspace) -> None:
        self._manager = manager
        self._store = manager._store
        self._blobs = manager.blobs
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
        try:
            await self._blobs.put(self.workspace.id, blob, one_piece(data))
        except Exception as exc:  # disk full, read-only, quota: a typed error, no partial file
            error = _storage_error(exc)
            if error is None:
                raise
            raise error from None
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
        try:
            sink: BlobWriter = await self._blobs.writer(self.workspace.id, blob)
        except Exception as exc:
            error = _storage_error(exc)
            if error is None:
                raise
            raise error from None
        try:
            async for chunk in chunks:
                if sink.size + len(chunk) > limit:
                    raise WorkspaceQuotaError(
                        f"File is larger than the limit of {limit} bytes. Write a smaller file.",
                        details={"limit_bytes": limit},
                    )
                if room is not None and sink.size + len(chunk) > room:
                    raise self._over_quota(room)  # counted as it streams: refused mid-way
                await sink.write(chunk)
            await sink.commit()
        except BaseException as exc:
            await sink.abort()
            error = _storage_error(exc)
            if error is None or error is exc:
                raise
            raise error from None
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
            with contextlib.suppress(Exception):
                await self._blobs.delete(self.workspace.id, blob)
            raise
        await self._blobs.adopted(self.workspace.id, blob)
        if old_blob is not None:
            await self._blobs.delete(self.workspace.id, old_blob)
        kind: ChangeKind = "created" if old_blob is None else "updated"
        self._manager._announce(WorkspaceChange(self.workspace.id, virtual, kind))
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

    async def info_by_id(self, file_id: str) -> WorkspaceFile | None:
        """The record of the file with id *file_id* in this workspace, or None."""
        found = await self._store.file_by_id(self.workspace.id, file_id)
        return None if found is None else found[0]

    async def read_by_id(self, file_id: str) -> tuple[WorkspaceFile, bytes]:
        async def lookup() -> tuple[WorkspaceFile, str]:
            found = await self._store.file_by_id(self.workspace.id, file_id)
            if found is None:
                raise WorkspaceFileNotFoundError(f"No file with id {file_id!r} in the workspace")
            return found

        return await self._read_current(lookup)

    async def open_verified(self, path: str) -> tuple[WorkspaceFile, AsyncIterator[bytes]]:
        """The file at *path* and its data as a stream of pieces (at most :data:`CHUNK_BYTES`
        each), checksum-verified before it is returned, so memory stays one piece whatever
        the file's size. Blobs are never changed in place, so what is streamed is what was
        verified (a blob removed by an overwrite meanwhile ends the stream with an error)."""
        normalise_path(path)
        for _ in range(_READ_ATTEMPTS):
            record, blob = await self._located(path)
            try:
                reader = await self._open(record, blob)
            except FileNotFoundError:
                continue  # replaced meanwhile: look again
            try:
                digest = hashlib.sha256()
                while piece := await reader.read():
                    digest.update(piece)
                await reader.rewind()
            except FileNotFoundError:
                await reader.aclose()
                continue
            except BaseException:
                await reader.aclose()
                raise
            if digest.hexdigest() != record.checksum:
                await reader.aclose()
                raise WorkspaceFileNotFoundError(
                    f"File {record.path!r} is damaged (checksum mismatch)"
                )
            return record, reader.chunks()
        raise WorkspaceFileNotFoundError(
            f"File {normalise_path(path)!r} is damaged (its data is missing)"
        )

    async def _open(self, record: WorkspaceFile, blob: str) -> BlobReader:
        try:
            return await self._blobs.open(self.workspace.id, blob)
        except FileNotFoundError:
            raise
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            # The blob was replaced by a symlink: never followed, and the file is unusable.
            raise WorkspaceFileNotFoundError(
                f"File {record.path!r} is damaged (its data is not a regular file)"
            ) from None

    async def _read_current(
        self, lookup: Callable[[], Awaitable[tuple[WorkspaceFile, str]]]
    ) -> tuple[WorkspaceFile, bytes]:
        # A concurrent overwrite may delete the blob between looking the row up and reading
        # it; the row then names a newer blob, so look again.
        for _ in range(_READ_ATTEMPTS):
            record, blob = await lookup()
            try:
                return record, await self._read_checked(record, blob)
            except FileNotFoundError:
                continue
        raise WorkspaceFileNotFoundError(f"File {record.path!r} is damaged (its data is missing)")

    async def _read_checked(self, record: WorkspaceFile, blob: str) -> bytes:
        reader = await self._open(record, blob)
        data = b"".join([piece async for piece in reader.chunks()])
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
            await self._blobs.delete(self.workspace.id, found[1])
            blob = await self._store.delete_file(self.workspace.id, virtual)
        if blob is None:
            return False
        await self._blobs.delete(self.workspace.id, blob)
        self._manager._announce(WorkspaceChange(self.workspace.id, virtual, "deleted"))
        return True
