"""OAuth2 connect against a local authorization server speaking the real protocol over HTTP.

The app runs in-process (its public URL is ``http://testserver``); the provider is a
:class:`~blockpilot.testing.FakeOAuthProvider` on a real socket. The "browser" is httpx:
the ``anon`` client opens the login (start) URL, which signs it in for the user with a
cookie, follows on to the provider, takes the redirect back, brings it to the callback, and
confirms on the page the callback shows. The callback's token exchange is a real HTTP call
from the app to the provider.
"""

from __future__ import annotations

import hashlib
import re
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from blockpilot.credentials.models import OAuth2Credentials
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.storage.tables import oauth_states
from blockpilot.storage.users import User
from blockpilot.testing import FakeOAuthProvider, pkce_challenge
from tests.api.api_helpers import assert_error

PUBLIC_URL = "http://testserver"
CALLBACK = f"{PUBLIC_URL}/api/v1/integrations/github/callback"


@pytest.fixture
def provider() -> Iterator[FakeOAuthProvider]:
    with FakeOAuthProvider(
        client_id="gh-client", client_secret="gh-secret", login="octocat"
    ) as srv:
        yield srv


def configure(monkeypatch: pytest.MonkeyPatch, name: str, srv: FakeOAuthProvider) -> None:
    prefix = f"BLOCKPILOT_PROVIDER_{name.upper()}_"
    monkeypatch.setenv(prefix + "CLIENT_ID", srv.client_id)
    monkeypatch.setenv(prefix + "CLIENT_SECRET", srv.client_secret or "")
    monkeypatch.setenv(prefix + "AUTHORIZE_URL", srv.authorize_url)
    monkeypatch.setenv(prefix + "TOKEN_URL", srv.token_url)
    monkeypatch.setenv(prefix + "USERINFO_URL", srv.userinfo_url)


@pytest.fixture
def settings(
    settings_factory, monkeypatch: pytest.MonkeyPatch, provider: FakeOAuthProvider
) -> Settings:
    built = settings_factory(http_allowed_hosts=("127.0.0.1",), public_url=PUBLIC_URL)
    configure(monkeypatch, "github", provider)  # after settings_factory cleared BLOCKPILOT_*
    return built


async def login(client: httpx.AsyncClient, scopes: str | None = "repo,read:user") -> dict[str, str]:
    response = await client.get(
        "/api/v1/integrations/github/login", params={"scopes": scopes} if scopes else None
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


async def authorize(anon: httpx.AsyncClient, login_url: str) -> str:
    """What a browser does: open the start link (a session cookie for *anon*), then, at the
    provider, get redirected back."""
    assert login_url.startswith(PUBLIC_URL + "/oauth/start/")
    start = await anon.get(path_of(login_url))
    assert start.status_code == 303, start.text
    async with httpx.AsyncClient(trust_env=False) as browser:
        response = await browser.get(start.headers["location"])
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "?")
    return location


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def confirm_form(page: str) -> dict[str, str]:
    fields = dict(re.findall(r'name="(flow_id|csrf)" value="([^"]+)"', page))
    assert set(fields) == {"flow_id", "csrf"}, page
    return fields


async def finish(anon: httpx.AsyncClient, callback: str) -> httpx.Response:
    """Bring the redirect back to the callback and, on the confirm page, confirm."""
    response = await anon.get(callback)
    if 'name="flow_id"' not in response.text:
        return response
    assert response.status_code == 200 and "Connect GitHub to" in response.text
    return await anon.post(
        "/oauth/confirm", data={**confirm_form(response.text), "decision": "connect"}
    )


async def connect(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> httpx.Response:
    return await finish(anon, path_of(await authorize(anon, (await login(client))["login_url"])))


async def stored(pilot: Pilot, user: User) -> list[OAuth2Credentials]:
    out = []
    for meta in await pilot.credential_store.list_meta(user.id):
        creds = await pilot.credential_store.get(user.id, meta.id)
        assert isinstance(creds, OAuth2Credentials)
        out.append(creds)
    return out


def assert_html_error(response: httpx.Response, *phrases: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in response.text
    assert "Nothing was saved" in response.text
    for phrase in phrases:
        assert phrase in response.text


async def test_login_url_carries_client_redirect_scopes_state_and_s256_challenge(
    as_alice: httpx.AsyncClient, anon: httpx.AsyncClient, pilot: Pilot, provider: FakeOAuthProvider
) -> None:
    started = time.time()
    body = await login(as_alice)
    assert set(body) == {"login_url", "state_expires_at", "provider", "scopes"}
    # A start link: it signs the browser in for Alice, then goes on to the provider.
    assert body["login_url"].startswith(PUBLIC_URL + "/oauth/start/")
    start = await anon.get(path_of(body["login_url"]))
    assert start.status_code == 303 and "blockpilot_session" in start.headers["set-cookie"]
    assert (
        "HttpOnly" in start.headers["set-cookie"] and "SameSite=lax" in start.headers["set-cookie"]
    )
    provider_url = start.headers["location"]
    assert provider_url.startswith(provider.authorize_url + "?")
    params = query(provider_url)
    assert params["client_id"] == "gh-client"
    assert params["redirect_uri"] == CALLBACK
    assert params["response_type"] == "code"
    assert params["scope"].split() == ["read:user", "repo"]  # provider default first, no duplicate
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 43
    expires_at = datetime.fromisoformat(body["state_expires_at"]).timestamp()
    assert started + 590 <= expires_at <= time.time() + 601
    # Only a hash of the state is stored; the verifier is encrypted.
    async with pilot.engine.connect() as conn:
        rows = (await conn.execute(select(oauth_states))).all()
    assert len(rows) == 1
    assert rows[0].state_hash == hashlib.sha256(params["state"].encode()).hexdigest()
    assert params["state"].encode() not in repr(tuple(rows[0])).encode()


async def test_connect_stores_encrypted_tokens_with_granted_scopes_and_username(
    as_alice: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    pilot: Pilot,
    alice: User,
    provider: FakeOAuthProvider,
) -> None:
    body = await login(as_alice)
    response = await finish(anon, path_of(await authorize(anon, body["login_url"])))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "Connected." in response.text and "Go back to the chat" in response.text
    assert "octocat" in response.text and "alice" in response.text
    [creds] = await stored(pilot, alice)
    assert creds.provider == "github" and creds.username == "octocat"
    assert creds.title == "GitHub (octocat)"
    assert creds.scopes == ["read:user", "repo"]
    assert provider.access_token_valid(creds.access_token.get_secret_value())
    assert creds.refresh_token is not None
    assert provider.refresh_token_valid(creds.refresh_token.get_secret_value())
    assert creds.access_token_expires_at is not None
    assert abs(creds.access_token_expires_at - (time.time() + 3600)) < 30
    for secret in creds.secret_values():
        assert secret not in response.text
    # The code was exchanged with the verifier whose challenge the login URL carried.
    [authorization] = provider.requests_to("/authorize", "GET")
    challenge = authorization.query["code_challenge"]
    [exchange] = provider.requests_to("/token", "POST")
    form = exchange.form()
    assert form["grant_type"] == "authorization_code"
    assert form["redirect_uri"] == CALLBACK
    assert pkce_challenge(form["code_verifier"]) == challenge
    # Metadata over the API: scopes shown, secrets not.
    listed = (await as_alice.get("/api/v1/credentials")).json()["credentials"]
    assert [(c["type"], c["scopes"]) for c in listed] == [("oauth2", ["read:user", "repo"])]


async def test_a_state_works_once(
    as_alice: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    pilot: Pilot,
    alice: User,
    provider: FakeOAuthProvider,
) -> None:
    callback = path_of(await authorize(anon, (await login(as_alice))["login_url"]))
    assert (await finish(anon, callback)).status_code == 200
    exchanges = provider.token_requests

    again = await anon.get(callback)
    assert_html_error(again, "not valid or was already used")
    assert provider.token_requests == exchanges  # refused before any call to the provider
    assert len(await stored(pilot, alice)) == 1


@pytest.mark.parametrize("tamper", ["flip", "truncate", "extend", "empty"])
async def test_tampered_state_is_refused_and_nothing_stored(
    tamper: str,
    as_alice: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    pilot: Pilot,
    alice: User,
    provider: FakeOAuthProvider,
) -> None:
    params = query(await authorize(anon, (await login(as_alice))["login_url"]))
    state = params["state"]
    params["state"] = {
        "flip": state[:-1] + ("A" if state[-1] != "A" else "B"),
        "truncate": state[:-4],
        "extend": state + "x",
        "empty": "",
    }[tamper]
    response = await anon.get("/api/v1/integrations/github/callback?" + urlencode(params))
    assert_html_error(response)
    assert provider.token_requests == 0
    assert await stored(pilot, alice) == []


async def test_expired_state_is_refused(
    app: FastAPI,
    as_alice: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    pilot: Pilot,
    alice: User,
    provider: FakeOAuthProvider,
) -> None:
    callback = path_of(await authorize(anon, (await login(as_alice))["login_url"]))
    app.state.web.oauth.states.clock = lambda: time.time() + 601
    assert_html_error(await anon.get(callback), "expired")
    assert provider.token_requests == 0
    assert await stored(pilot, alice) == []


async def test_state_just_inside_ten_minutes_still_works(
    app: FastAPI, as_alice: httpx.AsyncClient, anon: httpx.AsyncClient, pilot: Pilot, alice: User
) -> None:
    callback = path_of(await authorize(anon, (await login(as_alice))["login_url"]))
    app.state.web.oauth.states.clock = lambda: time.time() + 590
    assert (await finish(anon, callback)).status_code == 200
    assert len(await stored(pilot, alice)) == 1


async def test_another_users_code_cannot_finish_this_users_login(
    as_alice: httpx.AsyncClient,
    as_bob: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    pilot: Pilot,
    alice: User,
    bob: User,
) -> None:
    bob_back = query(await authorize(anon, (await login(as_bob))["login_url"]))
    alice_back = query(await authorize(anon, (await login(as_alice))["login_url"]))  # signed in
    # Bob's code with Alice's state: the PKCE verifier bound to Alice's state does not
    # match the challenge Bob's code was issued for, so the provider refuses the exchange.
    mixed = {"code": bob_back["code"], "state": alice_back["state"]}
    response = await anon.get("/api/v1/integrations/github/callback?" + urlencode(mixed))
    assert_html_error(response, "refused", "invalid_grant")
    assert await stored(pilot, alice) == [] and await stored(pilot, bob) == []
    # Alice's state is spent, and so is Bob's code (codes are single use at the provider);
    # Bob connects with a new login, and it lands in Bob's account only.
    for spent in (mixed, bob_back):
        assert_html_error(
            await anon.get("/api/v1/integrations/github/callback?" + urlencode(spent))
        )
    assert (await connect(as_bob, anon)).status_code == 200
    assert await stored(pilot, alice) == []
    assert [c.username for c in await stored(pilot, bob)] == ["octocat"]


async def test_state_of_one_provider_is_refused_by_another(
    monkeypatch: pytest.MonkeyPatch,
    as_alice: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    pilot: Pilot,
    alice: User,
    provider: FakeOAuthProvider,
) -> None:
    configure(monkeypatch, "google", provider)
    params = query(await authorize(anon, (await login(as_alice))["login_url"]))
    response = await anon.get("/api/v1/integrations/google/callback?" + urlencode(params))
    assert_html_error(response, "another provider")
    assert provider.token_requests == 0
    assert await stored(pilot, alice) == []


async def test_provider_error_is_shown_without_echoing_its_description(
    as_alice: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    pilot: Pilot,
    alice: User,
    provider: FakeOAuthProvider,
) -> None:
    provider.deny_next_authorization()
    params = query(await authorize(anon, (await login(as_alice))["login_url"]))
    assert params["error"] == "access_denied" and "code" not in params
    params["error_description"] = "<script>alert(1)</script> Call +1 555 0100 to fix"
    response = await anon.get("/api/v1/integrations/github/callback?" + urlencode(params))
    assert_html_error(response, "declined", "access_denied")
    assert "555" not in response.text and "<script>" not in response.text
    assert await stored(pilot, alice) == []
    # The declined login's state is spent too.
    replay = {"code": "code_anything", "state": params["state"]}
    assert_html_error(await anon.get("/api/v1/integrations/github/callback?" + urlencode(replay)))


async def test_odd_provider_error_codes_are_not_reflected(anon: httpx.AsyncClient) -> None:
    response = await anon.get(
        "/api/v1/integrations/github/callback", params={"error": "<b>x</b>", "state": "s"}
    )
    assert_html_error(response)
    assert "<b>x</b>" not in response.text and "&lt;b&gt;" not in response.text


@pytest.mark.parametrize("params", [{}, {"code": "c"}, {"state": "s"}])
async def test_missing_code_or_state_is_refused(
    anon: httpx.AsyncClient, params: dict[str, str]
) -> None:
    assert_html_error(await anon.get("/api/v1/integrations/github/callback", params=params))


async def test_token_endpoint_down_stores_nothing(
    monkeypatch: pytest.MonkeyPatch,
    as_alice: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    pilot: Pilot,
    alice: User,
) -> None:
    callback = path_of(await authorize(anon, (await login(as_alice))["login_url"]))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_TOKEN_URL", f"http://127.0.0.1:{port}/token")
    assert_html_error(await anon.get(callback), "Could not reach GitHub")
    assert await stored(pilot, alice) == []


async def test_unconfigured_provider_is_404_json(
    as_alice: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    for path in (
        "/api/v1/integrations/slack/login",
        "/api/v1/integrations/Not%20A%20Name/login",
    ):
        error = assert_error(await as_alice.get(path), 404, "provider_not_configured")
        assert "CLIENT_ID" in str(error["message"])
    assert_error(
        await anon.get("/api/v1/integrations/slack/callback", params={"code": "c", "state": "s"}),
        404,
        "provider_not_configured",
    )


async def test_login_needs_an_api_key_and_valid_scopes(
    anon: httpx.AsyncClient, as_alice: httpx.AsyncClient
) -> None:
    assert_error(await anon.get("/api/v1/integrations/github/login"), 401, "auth_required")
    assert_error(
        await as_alice.get("/api/v1/integrations/github/login", params={"scopes": 'repo,"x"'}),
        422,
        "invalid_input",
    )


async def test_connected_token_is_refreshed_later_by_the_credentials_manager(
    as_alice: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    pilot: Pilot,
    alice: User,
    provider: FakeOAuthProvider,
) -> None:
    provider.expires_in = 120  # inside the manager's 300 s refresh margin
    assert (await connect(as_alice, anon)).status_code == 200
    [before] = await stored(pilot, alice)

    fresh = await pilot.credentials.get(alice.id, before.id)
    assert isinstance(fresh, OAuth2Credentials)
    assert provider.refresh_count == 1
    assert fresh.access_token != before.access_token
    assert provider.access_token_valid(fresh.access_token.get_secret_value())
    assert fresh.scopes == ["read:user", "repo"] and fresh.username == "octocat"
    [after] = await stored(pilot, alice)
    assert after.access_token == fresh.access_token
    [refresh] = provider.requests_to("/token", "POST")[1:]
    assert refresh.form()["grant_type"] == "refresh_token"


async def test_reconnecting_the_same_account_renews_its_credential(
    as_alice: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    pilot: Pilot,
    alice: User,
) -> None:
    assert (await connect(as_alice, anon)).status_code == 200
    [first] = await stored(pilot, alice)
    await pilot.credential_store.mark_needs_reauthorization(alice.id, first.id)

    response = await connect(as_alice, anon)
    assert response.status_code == 200 and "connected again" in response.text
    [second] = await stored(pilot, alice)
    assert second.id == first.id and second.access_token != first.access_token
    [meta] = await pilot.credential_store.list_meta(alice.id)
    assert meta.needs_reauthorization is False


# --------------------------------------------------------------------------- token client
# Regressions: the code exchange (and the userinfo call) used a plain httpx client that took
# HTTP(S)_PROXY from the environment and read the token endpoint's answer whole.


def _dead_proxy_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, dead)
        monkeypatch.setenv(name.lower(), dead)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


async def test_connect_ignores_proxy_variables_of_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    as_alice: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    pilot: Pilot,
    alice: User,
) -> None:
    callback = path_of(await authorize(anon, (await login(as_alice))["login_url"]))
    _dead_proxy_in_env(monkeypatch)
    response = await finish(anon, callback)
    assert response.status_code == 200, response.text
    [creds] = await stored(pilot, alice)
    assert creds.username == "octocat"  # the userinfo call went direct too


async def test_a_huge_token_answer_connects_nothing(
    as_alice: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    pilot: Pilot,
    alice: User,
    provider: FakeOAuthProvider,
) -> None:
    from blockpilot.oauth.http import MAX_RESPONSE_BYTES
    from blockpilot.testing import Response

    callback = path_of(await authorize(anon, (await login(as_alice))["login_url"]))
    huge = {"access_token": "at_huge_0123456789", "token_type": "bearer", "expires_in": 3600}
    huge["padding"] = "x" * (2 * MAX_RESPONSE_BYTES)
    provider.queue_response(Response.json(huge), path="/token")
    assert_html_error(await anon.get(callback), "invalid token response")
    assert await stored(pilot, alice) == []
