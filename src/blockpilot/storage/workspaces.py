"""Workspace rows and workspace-file rows."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from blockpilot.errors import ConfigurationError, QuotaExceededError
from blockpilot.ids import new_id
from blockpilot.storage.common import aware, utcnow
from blockpilot.storage.tables import workspace_files as files
from blockpilot.storage.tables import workspace_storage, workspaces
from blockpilot.workspaces.models import Workspace, WorkspaceFile

# Each compare-and-swap round lets at least one concurrent writer through, so this bounds
# how many writers from different processes may race on one path before one gives up.
_UPSERT_ATTEMPTS = 50


def _file(row: Any) -> WorkspaceFile:
    return WorkspaceFile(
        id=row.id,
        workspace_id=row.workspace_id,
        path=row.path,
        size_bytes=row.size_bytes,
        checksum=row.checksum,
        mime_type=row.mime_type,
        created_at=aware(row.created_at) or utcnow(),
        updated_at=aware(row.updated_at) or utcnow(),
    )


class WorkspaceStore:
    """Workspaces (one per user) and the rows describing their files."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # A user's workspace never changes once created, so caching it is safe.
        self._by_user: dict[str, Workspace] = {}

    async def get_or_create(self, user_id: str) -> Workspace:
        """The user's workspace, created atomically on first use (one even under races)."""
        cached = self._by_user.get(user_id)
        if cached is not None:
            return cached
        workspace = await self._find(user_id)
        if workspace is None:
            candidate = Workspace(id=new_id(), user_id=user_id, created_at=utcnow())
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(
                        workspaces.insert().values(
                            id=candidate.id, user_id=user_id, created_at=candidate.created_at
                        )
                    )
                workspace = candidate
            except IntegrityError:
                # Another caller created it first; the unique user_id constraint decided.
                workspace = await self._find(user_id)
                assert workspace is not None
        self._by_user[user_id] = workspace
        return workspace

    async def _find(self, user_id: str) -> Workspace | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(workspaces).where(workspaces.c.user_id == user_id))
            ).first()
        return (
            None
            if row is None
            else Workspace(row.id, row.user_id, aware(row.created_at) or utcnow())
        )

    async def file_by_path(self, workspace_id: str, path: str) -> tuple[WorkspaceFile, str] | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(files).where(files.c.workspace_id == workspace_id, files.c.path == path)
                )
            ).first()
        return None if row is None else (_file(row), row.blob)

    async def file_by_id(self, workspace_id: str, file_id: str) -> tuple[WorkspaceFile, str] | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(files).where(files.c.workspace_id == workspace_id, files.c.id == file_id)
                )
            ).first()
        return None if row is None else (_file(row), row.blob)

    async def upsert_file(
        self,
        workspace_id: str,
        path: str,
        *,
        blob: str,
        size_bytes: int,
        checksum: str,
        mime_type: str,
        quota_bytes: int = 0,
    ) -> tuple[WorkspaceFile, str | None]:
        """Point *path* at *blob*; returns the row and the replaced blob (to delete), if any.

        With *quota_bytes* (0: none), the change is rolled back with
        :class:`~blockpilot.errors.QuotaExceededError` when the workspace's files would then
        hold more than that in all; the sum is taken in the transaction that makes the change,
        with concurrent writers of the workspace serialised, so racing writes cannot both
        slip under the quota.
        """
        now = utcnow()
        values = {
            "blob": blob,
            "size_bytes": size_bytes,
            "checksum": checksum,
            "mime_type": mime_type,
            "updated_at": now,
        }
        for attempt in range(_UPSERT_ATTEMPTS):
            if attempt:
                await asyncio.sleep(random.uniform(0, 0.002 * min(attempt, 10)))  # spread retries
            existing = await self.file_by_path(workspace_id, path)
            try:
                async with self._engine.begin() as conn:
                    if quota_bytes and conn.dialect.name == "postgresql":
                        await self._lock_workspace(conn, workspace_id)
                    if existing is None:
                        file_id = new_id()
                        await conn.execute(
                            files.insert().values(
                                id=file_id,
                                workspace_id=workspace_id,
                                path=path,
                                created_at=now,
                                **values,
                            )
                        )
                        old_blob = None
                    else:
                        file_id = existing[0].id
                        result = await conn.execute(
                            update(files)
                            .where(files.c.id == file_id, files.c.blob == existing[1])
                            .values(**values)
                        )
                        if not result.rowcount:
                            continue  # someone replaced it meanwhile; re-read and retry
                        old_blob = existing[1]
                    if quota_bytes:
                        await self._enforce_quota(conn, workspace_id, quota_bytes)
            except IntegrityError:
                continue  # created concurrently under the same path; retry as an update
            found = await self.file_by_id(workspace_id, file_id)
            assert found is not None
            return found[0], old_blob
        raise RuntimeError("workspace file kept changing concurrently; giving up")

    @staticmethod
    async def _lock_workspace(conn: AsyncConnection, workspace_id: str) -> None:
        # PostgreSQL: writers of one workspace take turns, so each sums the others' writes.
        # SQLite needs no lock (and a read first would make its write fail on a stale
        # snapshot): the write takes the database's one write lock before the sum is read.
        await conn.execute(
            select(workspaces.c.id).where(workspaces.c.id == workspace_id).with_for_update()
        )

    @staticmethod
    async def _enforce_quota(conn: AsyncConnection, workspace_id: str, quota_bytes: int) -> None:
        used = int(
            await conn.scalar(
                select(func.coalesce(func.sum(files.c.size_bytes), 0)).where(
                    files.c.workspace_id == workspace_id
                )
            )
            or 0
        )
        if used > quota_bytes:
            raise QuotaExceededError(
                f"The workspace would hold {used} bytes; its quota is {quota_bytes} bytes. "
                "Delete files you no longer need, or write a smaller file.",
                details={"used_bytes": used, "quota_bytes": quota_bytes},
            )

    async def bytes_used(self, workspace_id: str, *, except_path: str | None = None) -> int:
        """Bytes the workspace's files hold, not counting the file at *except_path*."""
        query = select(func.coalesce(func.sum(files.c.size_bytes), 0)).where(
            files.c.workspace_id == workspace_id
        )
        if except_path is not None:
            query = query.where(files.c.path != except_path)
        async with self._engine.connect() as conn:
            return int(await conn.scalar(query) or 0)

    async def list_files(
        self, workspace_id: str, prefix: str, *, limit: int, offset: int
    ) -> list[WorkspaceFile]:
        query = select(files).where(files.c.workspace_id == workspace_id)
        if prefix != "/":
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(
                (files.c.path == prefix)
                | files.c.path.like(escaped.rstrip("/") + "/%", escape="\\")
            )
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(query.order_by(files.c.path).limit(limit).offset(offset))
            ).all()
        return [_file(r) for r in rows]

    async def delete_file(self, workspace_id: str, path: str) -> str | None:
        """Delete the row; returns its blob name (to remove) or None if absent."""
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    select(files.c.id, files.c.blob).where(
                        files.c.workspace_id == workspace_id, files.c.path == path
                    )
                )
            ).first()
            if row is None:
                return None
            await conn.execute(delete(files).where(files.c.id == row.id))
        return str(row.blob)

    async def total_bytes(self, workspace_id: str) -> int:
        async with self._engine.connect() as conn:
            value = await conn.scalar(
                select(func.coalesce(func.sum(files.c.size_bytes), 0)).where(
                    files.c.workspace_id == workspace_id
                )
            )
        return int(value or 0)

    async def recorded_backend(self) -> str | None:
        """The backend recorded as holding the blobs (``file:``, ``database:``, ``s3://…``)."""
        async with self._engine.connect() as conn:
            value = await conn.scalar(
                select(workspace_storage.c.backend).where(workspace_storage.c.id == 1)
            )
        return None if value is None else str(value)

    async def record_backend(self, url: str) -> None:
        async with self._engine.begin() as conn:
            done = await conn.execute(
                update(workspace_storage)
                .where(workspace_storage.c.id == 1)
                .values(backend=url, updated_at=utcnow())
            )
            if not done.rowcount:
                await conn.execute(
                    workspace_storage.insert().values(id=1, backend=url, updated_at=utcnow())
                )

    async def check_backend(self, url: str) -> None:
        """Refuse to serve from *url* while the files recorded are kept on another backend
        (they would all read as missing); record *url* when nothing is kept anywhere yet."""
        recorded = await self.recorded_backend()
        if recorded == url:
            return
        if recorded is not None and await self._any_files():
            raise ConfigurationError(
                f"Workspace files are kept on {recorded!r} but BLOCKPILOT_WORKSPACE_URL is "
                f"{url!r}. Move them with: blockpilot workspaces migrate --to {url} "
                f"(or set BLOCKPILOT_WORKSPACE_URL={recorded}); nothing was changed."
            )
        try:
            await self.record_backend(url)
        except IntegrityError:
            return  # another server recorded it at the same moment; it checks the same way

    async def _any_files(self) -> bool:
        async with self._engine.connect() as conn:
            return (await conn.execute(select(files.c.id).limit(1))).first() is not None

    async def blob_rows(
        self, *, after: str = "", limit: int = 500
    ) -> list[tuple[str, str, str, str]]:
        """(file id, workspace id, blob, checksum) of every file, by file id after *after*."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(files.c.id, files.c.workspace_id, files.c.blob, files.c.checksum)
                    .where(files.c.id > after)
                    .order_by(files.c.id)
                    .limit(limit)
                )
            ).all()
        return [(r.id, r.workspace_id, r.blob, r.checksum) for r in rows]
