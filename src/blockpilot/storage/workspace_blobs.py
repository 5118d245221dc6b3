"""Workspace blobs in the database (``database:``), and choosing a backend.

The ``database:`` backend keeps blobs as numbered chunk rows (``workspace_blobs``).

Each chunk (at most 1 MiB) is inserted in its own short transaction, so an upload never
holds the database's write lock for its whole length and memory stays one chunk. A blob's
rows are all written before a ``workspace_files`` row names it; rows no file names (a writer
killed mid-upload) are removed by :meth:`DatabaseBlobStorage.start` once they are old and no
live hold names them (``storage/workspace_holds.py``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from blockpilot.errors import ConfigurationError
from blockpilot.storage.common import utcnow
from blockpilot.storage.tables import workspace_blob_holds as holds
from blockpilot.storage.tables import workspace_blobs as chunks
from blockpilot.storage.tables import workspace_files as files
from blockpilot.storage.workspace_holds import HeldBlobStorage
from blockpilot.storage.workspaces import WorkspaceStore
from blockpilot.workspaces.blobs import CHUNK_BYTES, BlobReader, BlobStorage, BlobWriter
from blockpilot.workspaces.local_blobs import LocalBlobStorage

logger = logging.getLogger(__name__)

ORPHAN_MAX_AGE_SECONDS = 3600.0
"""Chunks no file names, older than this, belong to a writer that is gone."""


class _DatabaseWriter(BlobWriter):
    def __init__(self, engine: AsyncEngine, workspace_id: str, blob: str) -> None:
        super().__init__()
        self._engine = engine
        self._key = {"workspace_id": workspace_id, "blob": blob}
        self._pending = bytearray()
        self._seq = 0

    async def _write(self, chunk: bytes) -> None:
        self._pending += chunk
        while len(self._pending) >= CHUNK_BYTES:
            await self._flush(bytes(self._pending[:CHUNK_BYTES]))
            del self._pending[:CHUNK_BYTES]

    async def _flush(self, data: bytes) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                chunks.insert().values(**self._key, seq=self._seq, data=data, created_at=utcnow())
            )
        self._seq += 1

    async def commit(self) -> None:
        if self._pending or self._seq == 0:  # an empty file is one empty chunk
            await self._flush(bytes(self._pending))
            self._pending.clear()

    async def abort(self) -> None:
        self._pending.clear()
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(chunks).where(
                    chunks.c.workspace_id == self._key["workspace_id"],
                    chunks.c.blob == self._key["blob"],
                )
            )


class _DatabaseReader(BlobReader):
    def __init__(self, engine: AsyncEngine, workspace_id: str, blob: str, count: int) -> None:
        self._engine = engine
        self._workspace_id = workspace_id
        self._blob = blob
        self._count = count
        self._seq = 0

    async def read(self) -> bytes:
        while self._seq < self._count:
            async with self._engine.connect() as conn:
                data = await conn.scalar(
                    select(chunks.c.data).where(
                        chunks.c.workspace_id == self._workspace_id,
                        chunks.c.blob == self._blob,
                        chunks.c.seq == self._seq,
                    )
                )
            if data is None:  # removed meanwhile by an overwrite or a delete
                raise FileNotFoundError(self._blob)
            self._seq += 1
            if data:
                return bytes(data)
        return b""

    async def rewind(self) -> None:
        self._seq = 0

    async def aclose(self) -> None:
        self._seq = self._count


class DatabaseBlobStorage(BlobStorage):
    """Blobs in the database every server shares."""

    url = "database:"

    def __init__(
        self, engine: AsyncEngine, *, orphan_max_age_seconds: float = ORPHAN_MAX_AGE_SECONDS
    ) -> None:
        self._engine = engine
        self._orphan_max_age = timedelta(seconds=orphan_max_age_seconds)

    async def start(self) -> int:
        cutoff = utcnow() - self._orphan_max_age
        named = exists().where(
            and_(files.c.workspace_id == chunks.c.workspace_id, files.c.blob == chunks.c.blob)
        )
        held = exists().where(
            and_(
                holds.c.workspace_id == chunks.c.workspace_id,
                holds.c.blob == chunks.c.blob,
                holds.c.expires_at > utcnow(),
            )
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(chunks).where(chunks.c.created_at < cutoff, ~named, ~held)
            )
        removed = int(result.rowcount or 0)
        if removed:
            logger.info("removed orphan workspace blob chunks", extra={"count": removed})
        return removed

    async def writer(self, workspace_id: str, blob: str) -> BlobWriter:
        return _DatabaseWriter(self._engine, workspace_id, blob)

    async def open(self, workspace_id: str, blob: str) -> BlobReader:
        async with self._engine.connect() as conn:
            count = int(
                await conn.scalar(
                    select(func.count()).where(
                        chunks.c.workspace_id == workspace_id, chunks.c.blob == blob
                    )
                )
                or 0
            )
        if not count:
            raise FileNotFoundError(blob)
        return _DatabaseReader(self._engine, workspace_id, blob, count)

    async def delete(self, workspace_id: str, blob: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(chunks).where(chunks.c.workspace_id == workspace_id, chunks.c.blob == blob)
            )

    async def blobs_older_than(self, cutoff: datetime) -> AsyncIterator[tuple[str, str]]:
        # A blob's last chunk is written when it is complete: its age is that chunk's.
        query = (
            select(chunks.c.workspace_id, chunks.c.blob)
            .group_by(chunks.c.workspace_id, chunks.c.blob)
            .having(func.max(chunks.c.created_at) < cutoff)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        for row in rows:
            yield row.workspace_id, row.blob


def open_blob_storage(url: str, *, home: Path, engine: AsyncEngine) -> BlobStorage:
    """The backend ``BLOCKPILOT_WORKSPACE_URL`` names: ``file:`` (``home/workspaces``),
    ``database:`` (*engine*'s database) or ``s3://bucket/prefix`` (``AWS_*`` variables)."""
    if url == "file:":
        return LocalBlobStorage(home / "workspaces")
    if url == "database:":
        return HeldBlobStorage(DatabaseBlobStorage(engine), engine)
    if url.startswith("s3://"):
        from blockpilot.workspaces.s3_blobs import S3BlobStorage

        return HeldBlobStorage(S3BlobStorage(url), engine)
    raise ConfigurationError(
        f"BLOCKPILOT_WORKSPACE_URL {url[:200]!r} is not file:, database: or s3://bucket/prefix"
    )


@dataclass
class BlobMigration:
    """What :func:`migrate_blobs` did."""

    source: str
    target: str
    files: int = 0
    copied: int = 0
    already_there: int = 0
    damaged: list[str] = field(default_factory=list)  # file ids whose source bytes are bad

    def public(self) -> dict[str, object]:
        return {
            "from": self.source,
            "to": self.target,
            "files": self.files,
            "copied": self.copied,
            "already_there": self.already_there,
            "damaged": self.damaged,
            "switched": not self.damaged,
        }


async def migrate_blobs(
    store: WorkspaceStore, source: BlobStorage, target: BlobStorage
) -> BlobMigration:
    """Copy every file's blob the *target* lacks from *source*, checking each against the
    file's checksum; when all are there, record *target* as the backend. Idempotent and
    resumable: a second run copies only what the first did not (docs/workspaces.md)."""
    report = BlobMigration(source.url, target.url)
    after = ""
    while rows := await store.blob_rows(after=after):
        for file_id, workspace_id, blob, checksum in rows:
            report.files += 1
            if await target.exists(workspace_id, blob):
                report.already_there += 1
                continue
            try:
                reader = await source.open(workspace_id, blob)
            except FileNotFoundError:
                report.damaged.append(file_id)
                continue
            digest = hashlib.sha256()

            writer = await target.writer(workspace_id, blob)
            try:
                async for piece in reader.chunks():
                    digest.update(piece)
                    await writer.write(piece)
                if digest.hexdigest() != checksum:
                    await writer.abort()
                    report.damaged.append(file_id)
                    continue
                await writer.commit()
            except BaseException:
                await writer.abort()
                raise
            await target.adopted(workspace_id, blob)
            report.copied += 1
        after = rows[-1][0]
    if not report.damaged:
        await store.record_backend(target.url)
    return report
