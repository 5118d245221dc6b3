"""An MCP OAuth source in two blockpilot "processes" (two Pilots, one database, one Redis):
the client registered by one is used by the other, and racing runs refresh the user's token
once at the authorization server — before expiry, and after the MCP server's 401."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from blockpilot.api import create_app
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.storage.users import User
from tests.scale.scale_services import RedisServer
from tests.sources.mcp_oauth_servers import OAuthUpstream, oauth_mcp_server
from tests.sources.test_mcp_oauth import _APPS, ADD, connect, needs_setup, operator_header, run


@pytest.fixture
def pilot_settings(settings_factory: Any, redis_server: RedisServer) -> Settings:
    return settings_factory(public_url="http://testserver", redis_url=redis_server.url)


@pytest.fixture
async def upstream() -> AsyncIterator[OAuthUpstream]:
    async with oauth_mcp_server() as up:
        yield up


@pytest.fixture
async def other(pilot: Pilot, pilot_settings: Settings) -> AsyncIterator[Pilot]:
    second = await Pilot.open(pilot_settings)
    try:
        yield second
    finally:
        await second.close()


async def test_two_processes_refresh_once(
    pilot: Pilot, other: Pilot, upstream: OAuthUpstream
) -> None:
    up = upstream
    alice: User = (await pilot.users.create("alice"))[0]
    await pilot.sources.add_mcp("notes", up.mcp_url, auth="oauth", headers=operator_header(up))
    _APPS[pilot] = create_app(pilot)
    create_app(other)
    await other.sources.sync(force=True)
    up.auth.token_seconds = 60  # within the refresh margin: the next runs refresh
    chat_a = (await pilot.session_for(alice.id, None)).session_id
    await connect(pilot, up, await needs_setup(pilot, alice, chat_a), "alice")
    await other.sources.sync(force=True)
    provider = other.oauth_provider("notes")
    assert provider is not None and provider.client_id in up.auth.clients  # registered by A
    up.auth.token_seconds = 3600

    chat_b = (await other.session_for(alice.id, None)).session_id
    first = await asyncio.gather(
        run(pilot, alice, ADD, {"a": 1, "b": 1}, chat_a),
        run(other, alice, ADD, {"a": 2, "b": 2}, chat_b),
    )
    assert [r.type for r in first] == ["block_output"] * 2, first
    assert up.auth.refreshes == 1

    up.auth.revoke_user("alice")  # the server drops the token early: both runs get a 401
    second = await asyncio.gather(
        run(pilot, alice, ADD, {"a": 3, "b": 3}, chat_a),
        run(other, alice, ADD, {"a": 4, "b": 4}, chat_b),
    )
    assert [r.type for r in second] == ["block_output"] * 2, second
    assert up.auth.refreshes == 2  # one more refresh for both, not two
