"""Fixtures for the API tests: the app over the shared Pilot, and one client per user."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from blockpilot.api import create_app
from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from blockpilot.testing import serve_asgi
from tests.api.api_helpers import ClientFactory


@pytest.fixture
async def app(pilot: Pilot) -> AsyncIterator[FastAPI]:
    # Not entered through its lifespan: with a given Pilot the app is ready at once, and the
    # lifespan's MCP task group cannot span a fixture's setup and teardown tasks.
    yield create_app(pilot)


@pytest.fixture
async def client_for(app: FastAPI) -> AsyncIterator[ClientFactory]:
    """Make in-process clients; ``client_for(key)`` sends that API key on every request."""
    opened: list[httpx.AsyncClient] = []

    def make(api_key: str | None = None, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions),
            base_url="http://testserver",
            headers=headers,
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


@pytest.fixture
async def anon(client_for: ClientFactory) -> httpx.AsyncClient:
    return client_for()


@pytest.fixture
async def alice_key(pilot: Pilot, alice: User) -> str:
    return await pilot.users.create_api_key(alice.id)


@pytest.fixture
async def bob_key(pilot: Pilot, bob: User) -> str:
    return await pilot.users.create_api_key(bob.id)


@pytest.fixture
async def as_alice(client_for: ClientFactory, alice_key: str) -> httpx.AsyncClient:
    return client_for(alice_key)


@pytest.fixture
async def as_bob(client_for: ClientFactory, bob_key: str) -> httpx.AsyncClient:
    return client_for(bob_key)


@pytest.fixture
async def base_url(pilot: Pilot) -> AsyncIterator[str]:
    """The API on a real socket (uvicorn), for tests that need real HTTP."""
    async with serve_asgi(create_app(pilot)) as url:
        yield url
