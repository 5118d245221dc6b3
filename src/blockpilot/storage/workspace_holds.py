"""Holds on workspace blobs: a blob is removed only once nobody needs it (migration 0011).

On the ``database:`` and ``s3://`` backends a download reads a blob in many requests (chunk
rows, or a verifying pass and then the stream), so removing a replaced blob at once would cut
short a download that started on it. And an upload writes a blob that no file row names until
it is complete, so "unnamed" alone does not tell an orphan from a blob being written.

:class:`HeldBlobStorage` wraps such a backend: opening a blob takes a ``read`` hold and writing
one an ``upload`` hold (rows of ``workspace_blob_holds`` that expire unless renewed), and a
blob is removed only when no file row names it and no live hold does. Whoever drops the last
hold removes it; holds of a killed process expire and the blob goes with the next sweep
(start-up, or ``blockpilot workspaces sweep``). See docs/workspaces.md.

Why this order is safe: a reader commits its hold *before* checking that a row still names
the blob, and a writer switches the row *before* looking for holds. So either the reader sees
the new row (and lets go), or the writer sees the reader's hold (and leaves the blob to it).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from blockpilot.storage.common import utcnow
from blockpilot.storage.tables import workspace_blob_holds as holds
from blockpilot.storage.tables import workspace_files as files
from blockpilot.workspaces.blobs import BlobReader, BlobStorage, BlobWriter
from blockpilot.workspaces.local_blobs import LocalBlobStorage, sweep_temp_files

logger = logging.getLogger(__name__)

HOLD_SECONDS = 900.0
"""How long a hold lasts unless renewed; a live reader or writer renews it every third of it."""

ORPHAN_MIN_AGE_SECONDS = 3600.0
"""An unnamed, unheld blob younger than this is left alone by an orphan sweep."""


_letting_go: set[asyncio.Future[None]] = set()  # kept alive until done (tasks included)


async def _uncancelled(work: asyncio.Future[None] | asyncio.Task[None]) -> None:
    """Finish *work* even if the caller is cancelled meanwhile (a download's client that
    hangs up cancels the response mid-clean-up): a hold dropped without removing its blob
    would leave an orphan until the next sweep."""
    _letting_go.add(work)
    work.add_done_callback(_letting_go.discard)
    await asyncio.shield(work)


@dataclass
class _Hold:
    id: str
    workspace_id: str
    blob: str
    renewed: float = field(default_factory=time.monotonic)


class HeldBlobStorage(BlobStorage):
    """*inner*'s blobs, each kept while a reader or an unfinished upload holds it."""

    def __init__(
        self, inner: BlobStorage, engine: AsyncEngine, *, hold_seconds: float = HOLD_SECONDS
    ) -> None:
        self.inner = inner
        self.url = inner.url
        self._engine = engine
        self._hold_seconds = hold_seconds

    # ------------------------------------------------------------------ holds

    async def _take(self, workspace_id: str, blob: str, kind: str) -> _Hold:
        hold = _Hold(secrets.token_hex(16), workspace_id, blob)
        async with self._engine.begin() as conn:
            await conn.execute(
                holds.insert().values(
                    id=hold.id,
                    workspace_id=workspace_id,
                    blob=blob,
                    kind=kind,
                    expires_at=utcnow() + timedelta(seconds=self._hold_seconds),
                )
            )
        return hold

    async def _renew_if_due(self, hold: _Hold) -> None:
        if time.monotonic() - hold.renewed < self._hold_seconds / 3:
            return
        hold.renewed = time.monotonic()
        async with self._engine.begin() as conn:
            await conn.execute(
                update(holds)
                .where(holds.c.id == hold.id)
                .values(expires_at=utcnow() + timedelta(seconds=self._hold_seconds))
            )

    async def _drop(self, hold: _Hold, *, remove: bool = True) -> None:
        """Let go of *hold*, and remove its blob if that was the last need of it. A failure
        to remove it is only logged: the blob is then an orphan for the next sweep."""
        async with self._engine.begin() as conn:
            await conn.execute(delete(holds).where(holds.c.id == hold.id))
        if not remove:
            return
        try:
            await self._remove_if_unneeded(hold.workspace_id, hold.blob)  # after the commit
        except Exception as exc:
            logger.warning(
                "replaced workspace blob not removed", extra={"error": type(exc).__name__}
            )

    async def _needed(self, workspace_id: str, blob: str) -> bool:
        named = exists().where(and_(files.c.workspace_id == workspace_id, files.c.blob == blob))
        held = exists().where(
            and_(
                holds.c.workspace_id == workspace_id,
                holds.c.blob == blob,
                holds.c.expires_at > utcnow(),
            )
        )
        async with self._engine.connect() as conn:
            return bool(await conn.scalar(select(named | held)))

    async def _named(self, workspace_id: str, blob: str) -> bool:
        query = select(
            exists().where(and_(files.c.workspace_id == workspace_id, files.c.blob == blob))
        )
        async with self._engine.connect() as conn:
            return bool(await conn.scalar(query))

    async def _remove_if_unneeded(self, workspace_id: str, blob: str) -> bool:
        if await self._needed(workspace_id, blob):
            return False
        await self.inner.delete(workspace_id, blob)
        return True

    # ------------------------------------------------------------------ BlobStorage

    async def writer(self, workspace_id: str, blob: str) -> BlobWriter:
        hold = await self._take(workspace_id, blob, "upload")
        try:
            inner = await self.inner.writer(workspace_id, blob)
        except BaseException:
            await self._drop(hold, remove=False)
            raise
        return _HeldWriter(self, inner, hold)

    async def adopted(self, workspace_id: str, blob: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(holds).where(
                    holds.c.workspace_id == workspace_id,
                    holds.c.blob == blob,
                    holds.c.kind == "upload",
                )
            )

    async def open(self, workspace_id: str, blob: str) -> BlobReader:
        hold = await self._take(workspace_id, blob, "read")
        try:
            if not await self._named(workspace_id, blob):
                raise FileNotFoundError(blob)  # replaced meanwhile: the caller looks again
            inner = await self.inner.open(workspace_id, blob)
        except BaseException:
            await self._drop(hold)
            raise
        return _HeldReader(self, inner, hold)

    async def delete(self, workspace_id: str, blob: str) -> None:
        """Remove *blob* once nobody needs it: now, or when its last reader lets go.

        Called for a blob its file no longer names (replaced or deleted), or for one whose
        upload failed to be recorded: its writer's own upload hold goes first."""
        await self.adopted(workspace_id, blob)
        await self._remove_if_unneeded(workspace_id, blob)

    async def exists(self, workspace_id: str, blob: str) -> bool:
        return await self.inner.exists(workspace_id, blob)

    def blobs_older_than(self, cutoff: datetime) -> AsyncIterator[tuple[str, str]]:
        return self.inner.blobs_older_than(cutoff)

    async def start(self) -> int:
        return await self.inner.start() + await self.sweep_expired_holds()

    async def aclose(self) -> None:
        await self.inner.aclose()

    # ------------------------------------------------------------------ sweeps

    async def sweep_expired_holds(self) -> int:
        """Drop the holds of readers and writers that are gone (killed, or stalled past their
        hold), removing the blobs nobody else needs; returns how many blobs were removed."""
        now = utcnow()
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(holds.c.workspace_id, holds.c.blob).where(holds.c.expires_at <= now)
                )
            ).all()
            await conn.execute(delete(holds).where(holds.c.expires_at <= now))
        removed = 0
        for workspace_id, blob in {(r.workspace_id, r.blob) for r in rows}:
            removed += await self._remove_if_unneeded(workspace_id, blob)
        if removed:
            logger.info("removed workspace blobs of expired holds", extra={"count": removed})
        return removed


class _HeldWriter(BlobWriter):
    def __init__(self, owner: HeldBlobStorage, inner: BlobWriter, hold: _Hold) -> None:
        super().__init__()
        self._owner = owner
        self._inner = inner
        self._hold = hold

    async def _write(self, chunk: bytes) -> None:
        await self._owner._renew_if_due(self._hold)
        await self._inner.write(chunk)

    async def commit(self) -> None:
        await self._inner.commit()  # the hold stays until a file names the blob (adopted)

    async def abort(self) -> None:
        try:
            await self._inner.abort()  # removes what was written
        finally:
            await self._owner._drop(self._hold, remove=False)


class _HeldReader(BlobReader):
    def __init__(self, owner: HeldBlobStorage, inner: BlobReader, hold: _Hold | None) -> None:
        self._owner = owner
        self._inner = inner
        self._hold = hold

    async def read(self) -> bytes:
        if self._hold is not None:
            await self._owner._renew_if_due(self._hold)
        return await self._inner.read()

    async def rewind(self) -> None:
        await self._inner.rewind()

    async def aclose(self) -> None:
        hold, self._hold = self._hold, None
        try:
            await self._inner.aclose()
        finally:
            if hold is not None:
                await _uncancelled(asyncio.ensure_future(self._owner._drop(hold)))


async def sweep_orphan_blobs(
    engine: AsyncEngine,
    blobs: BlobStorage,
    *,
    min_age_seconds: float = ORPHAN_MIN_AGE_SECONDS,
) -> int:
    """Remove every blob of *blobs* that is older than *min_age_seconds*, named by no file
    and held by nobody: what a writer killed between its upload and the row switch, or a
    server killed before it removed a replaced blob, left behind (and, in the local folder,
    temp files of writers killed mid-write). Returns how many."""
    removed = 0
    if isinstance(blobs, LocalBlobStorage):  # and the temp files of writers killed mid-write
        removed += await asyncio.to_thread(
            sweep_temp_files, blobs.root, max_age_seconds=min_age_seconds
        )
    held = blobs if isinstance(blobs, HeldBlobStorage) else HeldBlobStorage(blobs, engine)
    removed += await held.sweep_expired_holds()
    cutoff = utcnow() - timedelta(seconds=min_age_seconds)
    candidates = [found async for found in held.blobs_older_than(cutoff)]
    for workspace_id, blob in candidates:
        removed += await held._remove_if_unneeded(workspace_id, blob)
    if removed:
        logger.info("removed orphan workspace blobs", extra={"count": removed})
    return removed
