"""Where the bytes of workspace files live: a small blob-storage interface.

The database rows (``storage/workspaces.py``) stay the source of truth for paths, listing and
quotas; a backend only keeps immutable blobs named by random ids, per workspace. A write puts a
*new* blob completely (temp file and rename, chunk rows, or one object) before the file's row
is switched to it, so on every backend a reader never sees part of a file
(docs/workspaces.md). Backends: :mod:`blockpilot.workspaces.local_blobs` (``file:``),
:mod:`blockpilot.storage.workspace_blobs` (``database:``), :mod:`blockpilot.workspaces.s3_blobs`
(``s3://bucket/prefix``).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime

CHUNK_BYTES = 1024 * 1024
"""Pieces in which blobs are streamed in and out (and stored, on the database backend)."""


class BlobWriter(ABC):
    """One new blob, written piece by piece; invisible until :meth:`commit` returns."""

    def __init__(self) -> None:
        self.size = 0
        self.digest = hashlib.sha256()

    async def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        await self._write(chunk)
        self.size += len(chunk)
        self.digest.update(chunk)

    @abstractmethod
    async def _write(self, chunk: bytes) -> None: ...

    @abstractmethod
    async def commit(self) -> None:
        """Make the blob complete and durable."""

    @abstractmethod
    async def abort(self) -> None:
        """Drop what was written; never raises for a blob that is already gone."""


class BlobReader(ABC):
    """An open blob, read in order. Raises ``FileNotFoundError`` if it vanishes meanwhile
    (a concurrent overwrite removed it): the caller looks the file's row up again."""

    @abstractmethod
    async def read(self) -> bytes:
        """The next piece (at most :data:`CHUNK_BYTES`); ``b""`` at the end."""

    @abstractmethod
    async def rewind(self) -> None:
        """Start again from the first byte (the blob is immutable: the same bytes)."""

    @abstractmethod
    async def aclose(self) -> None: ...

    async def chunks(self) -> AsyncIterator[bytes]:
        """Every remaining piece; closes the reader at the end (or when abandoned)."""
        try:
            while piece := await self.read():
                yield piece
        finally:
            await self.aclose()


class BlobStorage(ABC):
    """The blobs of every workspace on one backend."""

    url: str
    """The backend's ``BLOCKPILOT_WORKSPACE_URL`` form: ``file:``, ``database:``, ``s3://…``."""

    async def start(self) -> int:
        """Remove what writers killed mid-write left behind; returns how many blobs."""
        return 0

    @abstractmethod
    async def writer(self, workspace_id: str, blob: str) -> BlobWriter: ...

    @abstractmethod
    async def open(self, workspace_id: str, blob: str) -> BlobReader:
        """Open a blob to read; ``FileNotFoundError`` if there is none."""

    @abstractmethod
    async def delete(self, workspace_id: str, blob: str) -> None:
        """Remove a blob; nothing happens if there is none."""

    async def adopted(self, workspace_id: str, blob: str) -> None:
        """A file's row now names *blob* (written by :meth:`writer`): what kept it from being
        taken for an orphan while no row named it can go."""
        return None

    @abstractmethod
    def blobs_older_than(self, cutoff: datetime) -> AsyncIterator[tuple[str, str]]:
        """(workspace id, blob) of every complete blob last written before *cutoff*, named
        by a file or not: the candidates of an orphan sweep."""

    async def exists(self, workspace_id: str, blob: str) -> bool:
        try:
            reader = await self.open(workspace_id, blob)
        except FileNotFoundError:
            return False
        await reader.aclose()
        return True

    async def aclose(self) -> None:
        return None

    async def put(self, workspace_id: str, blob: str, chunks: AsyncIterable[bytes]) -> BlobWriter:
        """Write a whole blob from *chunks*; the finished writer tells its size and digest."""
        writer = await self.writer(workspace_id, blob)
        try:
            async for chunk in chunks:
                await writer.write(chunk)
            await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        return writer

    async def read_all(self, workspace_id: str, blob: str) -> bytes:
        reader = await self.open(workspace_id, blob)
        return b"".join([piece async for piece in reader.chunks()])


async def one_piece(data: bytes) -> AsyncIterator[bytes]:
    """*data* as a stream of pieces of at most :data:`CHUNK_BYTES` (for :meth:`BlobStorage.put`)."""
    for start in range(0, len(data), CHUNK_BYTES):
        yield data[start : start + CHUNK_BYTES]
