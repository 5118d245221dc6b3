"""OAuth refresh under Redis leases: one refresh across processes, fencing, Redis outages.

Two "processes" are two IntegrationCredentialsManagers with their own RedisLockManager (own
Redis client) over one database; the provider is FakeOAuthProvider over a real socket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis.asyncio as redis_asyncio

from blockpilot.credentials.manager import IntegrationCredentialsManager
from blockpilot.credentials.models import OAuth2Credentials
from blockpilot.errors import ConflictError, OAuthRefreshError
from blockpilot.pilot import Pilot
from blockpilot.redis_locks import KEY_PREFIX, RedisLockManager
from blockpilot.settings import Settings
from blockpilot.storage.users import User
from blockpilot.testing import FakeOAuthProvider
from tests.scale.scale_services import RedisServer


@pytest.fixture
def provider() -> Iterator[FakeOAuthProvider]:
    with FakeOAuthProvider(scopes=["repo"], rotate_refresh_tokens=True) as srv:
        yield srv


@pytest.fixture
def pilot_settings(settings_factory, monkeypatch, provider, redis_server: RedisServer) -> Settings:
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_CLIENT_ID", provider.client_id)
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_CLIENT_SECRET", provider.client_secret or "")
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_TOKEN_URL", provider.token_url)
    return settings_factory(redis_url=redis_server.url, lock_lease_seconds=1.0)


@pytest.fixture
async def user(pilot: Pilot) -> User:
    created, _ = await pilot.users.create("alice")
    return created


ManagerFactory = Callable[..., IntegrationCredentialsManager]


@pytest.fixture
async def process(pilot: Pilot, redis_server: RedisServer) -> AsyncIterator[ManagerFactory]:
    """Another server process's credentials manager (its own Redis client)."""
    locks: list[RedisLockManager] = []

    def make(lease_seconds: float = 1.0) -> IntegrationCredentialsManager:
        manager = RedisLockManager(redis_server.url, lease_seconds=lease_seconds)
        locks.append(manager)
        return IntegrationCredentialsManager(
            pilot.credential_store, manager, pilot.oauth_provider, pilot.credentials.system
        )

    yield make
    for manager in locks:
        await manager.aclose()


async def _seed(
    pilot: Pilot, user: User, provider: FakeOAuthProvider, *, expires_in: int
) -> tuple[str, dict]:
    tokens = provider.issue_tokens(scopes=["repo"], expires_in=max(expires_in, 1))
    meta = await pilot.add_credentials(
        user.id,
        {
            "provider": "github",
            "type": "oauth2",
            "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
            "access_token_expires_at": int(time.time()) + expires_in,
            "scopes": ["repo"],
        },
    )
    return meta.id, tokens


def _access(creds: object) -> str:
    assert isinstance(creds, OAuth2Credentials)
    return creds.access_token.get_secret_value()


async def test_the_pilot_uses_redis_leases(pilot: Pilot) -> None:
    assert isinstance(pilot.locks, RedisLockManager)


async def test_a_refresh_slower_than_its_lease_happens_once_across_processes(
    pilot: Pilot, user: User, provider: FakeOAuthProvider, process: ManagerFactory
) -> None:
    cred_id, _ = await _seed(pilot, user, provider, expires_in=-10)
    provider.refresh_delay = 2.5  # more than twice the 1 s lease: only renewal keeps it
    managers = [process() for _ in range(4)]
    results = await asyncio.gather(*(m.get(user.id, cred_id) for m in managers for _ in range(5)))
    assert provider.refresh_count == 1
    assert len({_access(r) for r in results}) == 1
    assert provider.access_token_valid(_access(results[0]))
    assert _access(await pilot.credential_store.get(user.id, cred_id)) == _access(results[0])


async def test_a_holder_that_lost_its_lease_does_not_store_its_refresh(
    pilot: Pilot,
    user: User,
    provider: FakeOAuthProvider,
    process: ManagerFactory,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A provider with static refresh tokens, so the second refresh is legitimate and the
    # only question is whose result is stored.
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_ROTATES_REFRESH_TOKENS", "false")
    provider.rotate_refresh_tokens = False
    cred_id, _ = await _seed(pilot, user, provider, expires_in=-10)
    stalled, newer = process(), process()
    provider.refresh_delay = 1.0
    client = redis_asyncio.from_url(redis_server.url)
    try:
        first = asyncio.ensure_future(stalled.get(user.id, cred_id))
        while provider.refresh_count == 0:  # the stalled holder's refresh is under way
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # and sleeping in the provider
        # The stalled holder's lease vanishes (as after a pause longer than the lease) and
        # another process takes over and refreshes too.
        await client.delete(KEY_PREFIX + f"oauth-refresh:{user.id}:{cred_id}")
        provider.refresh_delay = 0.0
        second = await newer.get(user.id, cred_id)
        late = await first
    finally:
        await client.aclose()
    assert provider.refresh_count == 2
    stored = await pilot.credential_store.get(user.id, cred_id)
    assert _access(stored) == _access(second)  # the newer lease's refresh stands
    assert _access(late) == _access(second)  # the stalled one hands out the stored token


async def test_the_database_refuses_a_write_from_an_older_lease(
    pilot: Pilot, user: User, provider
) -> None:
    cred_id, _ = await _seed(pilot, user, provider, expires_in=3600)
    creds = await pilot.credential_store.get(user.id, cred_id)
    assert isinstance(creds, OAuth2Credentials)
    await pilot.credential_store.update(user.id, creds, fence=200)
    with pytest.raises(ConflictError):
        await pilot.credential_store.update(user.id, creds, fence=100)
    await pilot.credential_store.update(user.id, creds, fence=201)


async def test_redis_down_a_rotating_token_is_not_refreshed_and_the_error_says_why(
    pilot: Pilot, user: User, provider: FakeOAuthProvider, redis_server: RedisServer
) -> None:
    cred_id, old = await _seed(pilot, user, provider, expires_in=-10)
    redis_server.stop()
    with pytest.raises(OAuthRefreshError) as caught:
        await pilot.credentials.get(user.id, cred_id)
    assert "Redis" in caught.value.message and "rotates refresh tokens" in caught.value.message
    assert provider.refresh_count == 0
    assert provider.refresh_token_valid(old["refresh_token"])  # nothing spent
    # A token that still works (but is due for refresh) is used meanwhile.
    soon_id, soon = await _seed(pilot, user, provider, expires_in=120)
    assert _access(await pilot.credentials.get(user.id, soon_id)) == soon["access_token"]
    assert provider.refresh_count == 0
    # Redis back: the same Pilot refreshes without a restart.
    redis_server.start()
    fresh = await pilot.credentials.get(user.id, cred_id)
    assert provider.refresh_count == 1 and provider.access_token_valid(_access(fresh))


async def test_redis_down_a_static_refresh_token_is_refreshed_under_the_local_lock(
    pilot: Pilot,
    user: User,
    provider: FakeOAuthProvider,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_ROTATES_REFRESH_TOKENS", "false")
    provider.rotate_refresh_tokens = False
    cred_id, _ = await _seed(pilot, user, provider, expires_in=-10)
    redis_server.stop()
    results = await asyncio.gather(*(pilot.credentials.get(user.id, cred_id) for _ in range(10)))
    assert provider.refresh_count == 1  # still one per process
    assert len({_access(r) for r in results}) == 1
