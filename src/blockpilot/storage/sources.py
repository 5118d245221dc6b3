"""Imported sources of blocks (docs/sources.md): one row per source, shared by every process."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from blockpilot.errors import ConflictError, NotFoundError
from blockpilot.ids import new_id
from blockpilot.storage.common import aware, utcnow
from blockpilot.storage.tables import block_sources


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A stored source: what the operator gave, and the parsed form blocks are built from."""

    name: str
    kind: str
    spec_text: str
    config: dict[str, Any]
    base_url: str | None = None
    location: str | None = None
    include_tags: tuple[str, ...] = ()
    include_operations: tuple[str, ...] = ()
    id: str = field(default_factory=new_id)
    created_at: datetime | None = None
    updated_at: datetime | None = None


def _record(row: Any) -> SourceRecord:
    return SourceRecord(
        id=row.id,
        name=row.name,
        kind=row.kind,
        spec_text=row.spec_text,
        config=row.config,
        base_url=row.base_url,
        location=row.location,
        include_tags=tuple(row.include_tags or ()),
        include_operations=tuple(row.include_operations or ()),
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


class SourceStore:
    """Sources by name. ``versions()`` is the cheap check every process makes for changes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, record: SourceRecord) -> SourceRecord:
        now = utcnow()
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    block_sources.insert().values(
                        id=record.id,
                        name=record.name,
                        kind=record.kind,
                        location=record.location,
                        spec_text=record.spec_text,
                        config=record.config,
                        base_url=record.base_url,
                        include_tags=list(record.include_tags),
                        include_operations=list(record.include_operations),
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            raise ConflictError(
                f"A source named {record.name!r} already exists; "
                "refresh it with 'blockpilot sources refresh' or remove it first",
                details={"name": record.name},
            ) from None
        return await self.get(record.name)

    async def replace(self, record: SourceRecord) -> SourceRecord:
        """Store a refreshed spec and config for an existing source (``updated_at`` moves on)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(block_sources)
                .where(block_sources.c.name == record.name)
                .values(
                    spec_text=record.spec_text,
                    config=record.config,
                    base_url=record.base_url,
                    updated_at=utcnow(),
                )
            )
        if not result.rowcount:
            raise _not_found(record.name)
        return await self.get(record.name)

    async def find(self, name: str) -> SourceRecord | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(block_sources).where(block_sources.c.name == name))
            ).first()
        return None if row is None else _record(row)

    async def get(self, name: str) -> SourceRecord:
        found = await self.find(name)
        if found is None:
            raise _not_found(name)
        return found

    async def all(self) -> list[SourceRecord]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(block_sources).order_by(block_sources.c.name))).all()
        return [_record(r) for r in rows]

    async def load(self, names: Sequence[str]) -> list[SourceRecord]:
        if not names:
            return []
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(select(block_sources).where(block_sources.c.name.in_(names)))
            ).all()
        return [_record(r) for r in rows]

    async def versions(self) -> dict[str, str]:
        """Source name → a version string that changes whenever the source's blocks may."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(block_sources.c.name, block_sources.c.id, block_sources.c.updated_at)
                )
            ).all()
        return {r.name: f"{r.id}:{r.updated_at.isoformat()}" for r in rows}

    async def remove(self, name: str) -> None:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(block_sources).where(block_sources.c.name == name))
        if not result.rowcount:
            raise _not_found(name)


def _not_found(name: str) -> NotFoundError:
    return NotFoundError(
        f"Source {name[:80]!r} not found; see 'blockpilot sources list'", details={"name": name}
    )
