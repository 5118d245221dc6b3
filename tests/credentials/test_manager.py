"""The OAuth2 refresh manager (IntegrationCredentialsManager + OAuthProvider) with
FakeOAuthProvider and FakeGitHub over real sockets, through run_block."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from blockpilot.blocks.library.github import GithubReadIssueBlock
from blockpilot.credentials.models import OAuth2Credentials
from blockpilot.pilot import Pilot
from blockpilot.testing import FakeGitHub, FakeOAuthProvider, RecordedRequest, Response

GH = GithubReadIssueBlock.id
ISSUE_URL = "https://github.com/octo/demo/issues/7"


@pytest.fixture
def provider() -> Iterator[FakeOAuthProvider]:
    with FakeOAuthProvider(scopes=["repo"]) as srv:
        yield srv


@pytest.fixture
def github(provider: FakeOAuthProvider) -> Iterator[FakeGitHub]:
    """GitHub that accepts exactly the access tokens the fake provider considers valid."""
    with FakeGitHub() as srv:
        seen: list[str] = []

        def issue(request: RecordedRequest, params: dict[str, str]) -> Response:
            token = (request.header("authorization") or "").removeprefix("Bearer ")
            seen.append(token)
            if not provider.access_token_valid(token):
                return Response.json({"message": "Bad credentials"}, status=401)
            return Response.json({"title": "Refresh me", "body": "b", "user": {"login": "mona"}})

        srv.add_route("GET", "/repos/{owner}/{repo}/issues/{number}", issue)
        srv.seen_tokens = seen  # type: ignore[attr-defined]
        yield srv


@pytest.fixture
async def oauth_pilot(settings_factory, monkeypatch, provider, github) -> AsyncIterator[Pilot]:
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_CLIENT_ID", provider.client_id)
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_CLIENT_SECRET", provider.client_secret or "")
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_TOKEN_URL", provider.token_url)
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_BASE_URL", github.base_url)
    pilot = await Pilot.open(settings_factory())
    try:
        yield pilot
    finally:
        await pilot.close()


@pytest.fixture
async def user(oauth_pilot):
    created, _ = await oauth_pilot.users.create("alice")
    return created


async def _seed(
    pilot: Pilot, user, provider: FakeOAuthProvider, *, expires_in: int
) -> tuple[str, dict[str, Any]]:
    """Store a GitHub oauth2 credential whose access token expires in *expires_in* seconds."""
    tokens = provider.issue_tokens(scopes=["repo"], expires_in=max(expires_in, 1))
    meta = await pilot.add_credentials(
        user.id,
        {
            "provider": "github",
            "type": "oauth2",
            "title": "octocat",
            "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
            "access_token_expires_at": int(time.time()) + expires_in,
            "scopes": ["repo"],
        },
    )
    return meta.id, tokens


async def _run(pilot: Pilot, user) -> dict[str, Any]:
    response = await pilot.call_tool(
        "run_block", {"block_id": GH, "input_data": {"issue_url": ISSUE_URL}}, user_id=user.id
    )
    return response.model_dump(mode="json")


async def _stored(pilot: Pilot, user, cred_id: str) -> OAuth2Credentials:
    creds = await pilot.credential_store.get(user.id, cred_id)
    assert isinstance(creds, OAuth2Credentials)
    return creds


async def test_twenty_concurrent_runs_refresh_exactly_once(
    oauth_pilot, user, provider, github
) -> None:
    cred_id, old = await _seed(oauth_pilot, user, provider, expires_in=60)
    provider.refresh_delay = 0.3  # widen the race window
    results = await asyncio.gather(*(_run(oauth_pilot, user) for _ in range(20)))
    assert [r["type"] for r in results] == ["block_output"] * 20, [
        r for r in results if r["type"] != "block_output"
    ]
    assert all(r["outputs"]["title"] == ["Refresh me"] for r in results)
    assert provider.refresh_count == 1
    stored = await _stored(oauth_pilot, user, cred_id)
    new_token = stored.access_token.get_secret_value()
    assert new_token != old["access_token"]
    assert provider.access_token_valid(new_token)
    assert (
        stored.access_token_expires_at is not None
        and stored.access_token_expires_at > time.time() + 3000
    )
    assert github.seen_tokens == [new_token] * 20
    meta = await oauth_pilot.credential_store.get_meta(user.id, cred_id)
    assert meta.expires_at == stored.access_token_expires_at  # the metadata column follows
    assert not meta.needs_reauthorization
    for r in results:
        assert new_token not in str(r) and old["refresh_token"] not in str(r)


async def test_fresh_token_is_not_refreshed(oauth_pilot, user, provider, github) -> None:
    _, tokens = await _seed(oauth_pilot, user, provider, expires_in=3600)
    r = await _run(oauth_pilot, user)
    assert r["type"] == "block_output", r
    assert provider.refresh_count == 0
    assert github.seen_tokens == [tokens["access_token"]]


async def test_refresh_request_is_well_formed(oauth_pilot, user, provider) -> None:
    _, old = await _seed(oauth_pilot, user, provider, expires_in=10)
    r = await _run(oauth_pilot, user)
    assert r["type"] == "block_output", r
    [request] = provider.requests_to("/token", "POST")
    form = request.form()
    assert form["grant_type"] == "refresh_token"
    assert form["refresh_token"] == old["refresh_token"]
    assert provider.client_auth_methods == ["client_secret_post"]


async def test_rotating_refresh_tokens_are_stored(oauth_pilot, user, provider, github) -> None:
    provider.rotate_refresh_tokens = True
    cred_id, old = await _seed(oauth_pilot, user, provider, expires_in=30)
    r = await _run(oauth_pilot, user)
    assert r["type"] == "block_output", r
    stored = await _stored(oauth_pilot, user, cred_id)
    new_refresh = stored.refresh_token.get_secret_value()
    assert new_refresh != old["refresh_token"]
    assert provider.refresh_token_valid(new_refresh)
    assert not provider.refresh_token_valid(old["refresh_token"])
    # The next refresh must use the rotated token, and succeeds.
    await oauth_pilot.credential_store.update(
        user.id, stored.model_copy(update={"access_token_expires_at": int(time.time()) + 5})
    )
    r = await _run(oauth_pilot, user)
    assert r["type"] == "block_output", r
    assert provider.refresh_count == 2
    assert provider.requests_to("/token")[-1].form()["refresh_token"] == new_refresh


async def test_invalid_grant_marks_reauthorization_and_keeps_credential(
    oauth_pilot, user, provider, github
) -> None:
    cred_id, old = await _seed(oauth_pilot, user, provider, expires_in=-10)
    provider.revoke_refresh_token(old["refresh_token"])
    r = await _run(oauth_pilot, user)
    assert r["type"] == "error", r
    assert r["code"] == "credentials_unavailable"
    assert "reconnect" in r["message"]
    assert old["refresh_token"] not in str(r)
    assert github.seen_tokens == []
    meta = await oauth_pilot.credential_store.get_meta(user.id, cred_id)
    assert meta is not None and meta.needs_reauthorization  # kept, not deleted
    stored = await _stored(oauth_pilot, user, cred_id)
    assert stored.refresh_token.get_secret_value() == old["refresh_token"]

    r = await _run(oauth_pilot, user)
    assert r["type"] == "setup_requirements", r
    missing = r["setup_info"]["user_readiness"]["missing_credentials"]["credentials"]
    assert missing["provider"] == "github" and "oauth2" in missing["types"]
    assert provider.refresh_count == 1  # no second attempt with a refused grant

    # Reconnecting (a fresh token stored for the same credential) clears the mark.
    fresh = provider.issue_tokens(scopes=["repo"])
    await oauth_pilot.credential_store.update(
        user.id,
        stored.model_copy(
            update={
                "access_token": fresh["access_token"],
                "refresh_token": fresh["refresh_token"],
                "access_token_expires_at": int(time.time()) + 3600,
            }
        ),
    )
    r = await _run(oauth_pilot, user)
    assert r["type"] == "block_output", r


async def test_injected_invalid_grant_error(oauth_pilot, user, provider) -> None:
    cred_id, _ = await _seed(oauth_pilot, user, provider, expires_in=0)
    provider.fail_next_refresh(error="invalid_grant")
    r = await _run(oauth_pilot, user)
    assert r["code"] == "credentials_unavailable", r
    assert (await oauth_pilot.credential_store.get_meta(user.id, cred_id)).needs_reauthorization


async def test_transient_failure_with_valid_token_uses_old_token(
    oauth_pilot, user, provider, github
) -> None:
    cred_id, old = await _seed(oauth_pilot, user, provider, expires_in=60)
    before = await _stored(oauth_pilot, user, cred_id)
    provider.fail_next_refresh()  # 503 temporarily_unavailable
    r = await _run(oauth_pilot, user)
    assert r["type"] == "block_output", r
    assert provider.refresh_count == 1
    assert github.seen_tokens == [old["access_token"]]
    after = await _stored(oauth_pilot, user, cred_id)
    assert after == before
    assert not (await oauth_pilot.credential_store.get_meta(user.id, cred_id)).needs_reauthorization


@pytest.mark.parametrize("status", [503, 500, 429])
async def test_transient_failure_with_expired_token_keeps_tokens(
    oauth_pilot, user, provider, github, status
) -> None:
    cred_id, old = await _seed(oauth_pilot, user, provider, expires_in=-5)
    before = await _stored(oauth_pilot, user, cred_id)
    provider.fail_next_refresh(
        status=status, error="temporarily_unavailable" if status != 500 else None
    )
    r = await _run(oauth_pilot, user)
    assert r["type"] == "error", r
    assert r["code"] == "credentials_unavailable"
    assert old["access_token"] not in str(r) and old["refresh_token"] not in str(r)
    assert github.seen_tokens == []
    assert await _stored(oauth_pilot, user, cred_id) == before
    meta = await oauth_pilot.credential_store.get_meta(user.id, cred_id)
    assert not meta.needs_reauthorization
    # Once the provider is back, the same stored refresh token works.
    r = await _run(oauth_pilot, user)
    assert r["type"] == "block_output", r


async def test_unreachable_provider_with_expired_token(
    settings_factory, monkeypatch, github
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_CLIENT_ID", "cid")
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_CLIENT_SECRET", "csecret")
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_TOKEN_URL", f"http://127.0.0.1:{port}/token")
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_BASE_URL", github.base_url)
    pilot = await Pilot.open(settings_factory())
    try:
        alice, _ = await pilot.users.create("alice")
        meta = await pilot.add_credentials(
            alice.id,
            {
                "provider": "github",
                "type": "oauth2",
                "access_token": "at_expired_0123456789",
                "refresh_token": "rt_0123456789abcdef",
                "access_token_expires_at": int(time.time()) - 1,
                "scopes": ["repo"],
            },
        )
        r = await _run(pilot, alice)
        assert r["code"] == "credentials_unavailable", r
        assert not (await pilot.credential_store.get_meta(alice.id, meta.id)).needs_reauthorization
    finally:
        await pilot.close()


async def test_no_oauth_app_configured(settings_factory, monkeypatch, github) -> None:
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_BASE_URL", github.base_url)
    pilot = await Pilot.open(settings_factory())
    try:
        alice, _ = await pilot.users.create("alice")
        base = {
            "provider": "github",
            "type": "oauth2",
            "refresh_token": "rt_x1234567",
            "scopes": ["repo"],
        }
        await pilot.add_credentials(
            alice.id,
            {
                **base,
                "access_token": "at_expired_aaaaaa",
                "access_token_expires_at": int(time.time()) - 1,
            },
        )
        r = await _run(pilot, alice)
        assert r["code"] == "credentials_unavailable", r
        assert "CLIENT_ID" in r["message"]
    finally:
        await pilot.close()


async def test_refresh_of_one_users_credential_never_touches_another(
    oauth_pilot, user, provider
) -> None:
    bob, _ = await oauth_pilot.users.create("bob")
    a_id, _ = await _seed(oauth_pilot, user, provider, expires_in=30)
    b_id, _ = await _seed(oauth_pilot, bob, provider, expires_in=3600)
    b_before = await _stored(oauth_pilot, bob, b_id)
    results = await asyncio.gather(*(_run(oauth_pilot, u) for u in (user, bob, user, bob)))
    assert all(r["type"] == "block_output" for r in results), results
    assert provider.refresh_count == 1
    assert await _stored(oauth_pilot, bob, b_id) == b_before
    assert await oauth_pilot.credential_store.get(bob.id, a_id) is None


async def test_wrong_client_secret_does_not_force_users_to_reconnect(
    settings_factory, monkeypatch, provider, github
) -> None:
    # Regression: invalid_client (the operator's OAuth app is misconfigured) was treated like a
    # refused refresh token, marking every user's credential as needing re-authorisation.
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_CLIENT_ID", provider.client_id)
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_CLIENT_SECRET", "not-the-secret")
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_TOKEN_URL", provider.token_url)
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_BASE_URL", github.base_url)
    pilot = await Pilot.open(settings_factory())
    try:
        alice, _ = await pilot.users.create("alice")
        expired_id, _ = await _seed(pilot, alice, provider, expires_in=-5)
        before = await _stored(pilot, alice, expired_id)
        r = await _run(pilot, alice)
        assert r["type"] == "error" and r["code"] == "credentials_unavailable", r
        assert "not-the-secret" not in str(r)
        meta = await pilot.credential_store.get_meta(alice.id, expired_id)
        assert not meta.needs_reauthorization
        assert await _stored(pilot, alice, expired_id) == before
        assert provider.refresh_token_valid(before.refresh_token.get_secret_value())
        # With a still-valid token the run goes ahead on the old token.
        await pilot.credential_store.delete(alice.id, expired_id)
        valid_id, tokens = await _seed(pilot, alice, provider, expires_in=60)
        r = await _run(pilot, alice)
        assert r["type"] == "block_output", r
        assert github.seen_tokens[-1] == tokens["access_token"]
        assert not (await pilot.credential_store.get_meta(alice.id, valid_id)).needs_reauthorization
    finally:
        await pilot.close()


@pytest.mark.parametrize(
    "payload",
    [
        {"access_token": None, "token_type": "bearer"},
        {"access_token": "", "token_type": "bearer"},
        {"access_token": 12345, "token_type": "bearer"},
        {"access_token": "at_ok_but_bad_expiry", "expires_in": "soon"},
        {"access_token": "at_ok_but_bad_refresh", "expires_in": 3600, "refresh_token": ["x"]},
        {"access_token": "at_" + "x" * 20_000, "expires_in": 3600},
        ["not", "an", "object"],
    ],
)
async def test_malformed_refresh_response_keeps_stored_tokens(
    oauth_pilot, user, provider, github, payload
) -> None:
    # Regression: a 200 token response with a null/empty access token or a non-numeric
    # expires_in was stored as is (or crashed the run), bricking the credential.
    cred_id, _ = await _seed(oauth_pilot, user, provider, expires_in=-5)
    before = await _stored(oauth_pilot, user, cred_id)
    provider.queue_response(Response.json(payload), path="/token")
    r = await _run(oauth_pilot, user)
    assert r["type"] == "error" and r["code"] == "credentials_unavailable", r
    assert await _stored(oauth_pilot, user, cred_id) == before
    assert not (await oauth_pilot.credential_store.get_meta(user.id, cred_id)).needs_reauthorization
    r = await _run(oauth_pilot, user)  # the provider answers properly again
    assert r["type"] == "block_output", r
