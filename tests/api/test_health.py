"""/readyz runs SELECT 1 on the database and says 503 when it cannot."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from blockpilot.pilot import Pilot


async def test_readyz_is_503_when_the_database_is_unreachable(
    pilot: Pilot, anon: httpx.AsyncClient, tmp_path
) -> None:
    working = pilot.engine
    broken = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/db.sqlite")
    pilot.engine = broken
    try:
        response = await anon.get("/readyz")
    finally:
        pilot.engine = working
        await broken.dispose()
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "checks": {"database": "unreachable"}}
    assert (await anon.get("/healthz")).status_code == 200
    assert (await anon.get("/readyz")).status_code == 200
