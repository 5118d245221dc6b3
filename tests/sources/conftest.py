"""Fixtures shared by the source tests (docs/sources.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from blockpilot.api import create_app
from blockpilot.pilot import Pilot
from blockpilot.storage.users import User

PUBLIC_URL = "http://testserver"


@pytest.fixture
async def clients(pilot: Pilot, alice: User, bob: User) -> AsyncIterator[dict[str, Any]]:
    """HTTP clients of the whole API, in process: ``alice`` and ``bob`` each with an API key
    of their own, ``anon`` with none."""
    app = create_app(pilot)
    opened: dict[str, Any] = {}
    for name, user in (("alice", alice), ("bob", bob), ("anon", None)):
        headers = {}
        if user is not None:
            headers["Authorization"] = f"Bearer {await pilot.users.create_api_key(user.id)}"
        opened[name] = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL, headers=headers
        )
    yield opened
    for client in opened.values():
        await client.aclose()
