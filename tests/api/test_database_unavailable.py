"""An unreachable database is a 503 with Retry-After (and /readyz 503), never a 500."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from blockpilot.pilot import Pilot
from blockpilot.storage.engine import create_engine
from tests.api.api_helpers import ClientFactory


async def _refused() -> None:
    engine = create_engine(
        "postgresql+asyncpg://nobody@127.0.0.1:1/none"
    )  # nothing listens on port 1
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def test_requests_get_503_database_unavailable_while_the_database_is_down(
    pilot: Pilot, client_for: ClientFactory, alice_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(key: str) -> None:
        await _refused()

    monkeypatch.setattr(pilot.users, "owner_of_api_key", down)
    response = await client_for(alice_key).get("/api/v1/executions")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    error = response.json()["error"]
    assert error["code"] == "database_unavailable"
    assert "ConnectionRefused" not in error["message"] and "127.0.0.1" not in error["message"]


async def test_a_bug_is_still_a_500_not_a_503(
    pilot: Pilot, client_for: ClientFactory, alice_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(key: str) -> None:
        raise FileNotFoundError(2, "No such file or directory")  # an OSError, but not the database

    monkeypatch.setattr(pilot.users, "owner_of_api_key", broken)
    response = await client_for(alice_key, raise_app_exceptions=False).get("/api/v1/executions")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
