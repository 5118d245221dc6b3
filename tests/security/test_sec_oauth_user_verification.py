"""OAuth account-linking CSRF and single-use setup links (issue 11, items 2 and 8).

The attack: bob asks for a login link (the API's ``login_url``, or a setup link) and sends it
to alice; alice clicks; a provider that skips consent on re-authorisation sends her browser
straight back to the callback, and *her* provider account is connected to *bob*. The fix
(docs/oauth.md): the callback parks the tokens, and only a verification by the user who
started the login stores them: that user's browser session (set by the setup or start
link, confirmed on a page naming the user and the account), or the host application's user
verifier (``POST /api/v1/oauth/verify`` with that user's key).

Each "browser" here is its own httpx client with its own cookie jar; the provider is a
:class:`~blockpilot.testing.FakeOAuthProvider` on a real socket that always auto-approves.
Canary access tokens prove a parked connect never lies in the database in plaintext.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from blockpilot.api import create_app
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.storage.tables import oauth_pending_flows
from blockpilot.storage.users import User
from blockpilot.testing import FakeOAuthProvider, Response
from tests.security.sec_helpers import CANARIES, GITHUB_ISSUE_ID

PUBLIC_URL = "http://testserver"
VERIFIER = "https://app.example.com/blockpilot/verify?from=bp"


@pytest.fixture
def provider() -> Iterator[FakeOAuthProvider]:
    with FakeOAuthProvider(client_id="gh", client_secret="gh-secret", login="alice-gh") as srv:
        yield srv


def _configure(monkeypatch: pytest.MonkeyPatch, srv: FakeOAuthProvider) -> None:
    for key, value in {
        "CLIENT_ID": srv.client_id,
        "CLIENT_SECRET": srv.client_secret or "",
        "AUTHORIZE_URL": srv.authorize_url,
        "TOKEN_URL": srv.token_url,
        "USERINFO_URL": srv.userinfo_url,
    }.items():
        monkeypatch.setenv(f"BLOCKPILOT_PROVIDER_GITHUB_{key}", value)


@pytest.fixture
def verifier_url() -> str | None:
    """No user verifier by default; tests of the verifier parametrize this with VERIFIER."""
    return None


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    provider: FakeOAuthProvider,
    verifier_url: str | None,
) -> Settings:
    built = settings_factory(
        http_allowed_hosts=("127.0.0.1",), public_url=PUBLIC_URL, user_verifier_url=verifier_url
    )
    _configure(monkeypatch, provider)
    return built


@pytest.fixture
async def app(pilot: Pilot) -> FastAPI:
    return create_app(pilot)


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[Callable[[str | None], httpx.AsyncClient]]:
    """Clients of the app, each with its own cookie jar: one per browser (or API caller)."""
    opened: list[httpx.AsyncClient] = []

    def make(api_key: str | None = None) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=PUBLIC_URL,
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


async def _key(pilot: Pilot, user: User) -> str:
    return await pilot.users.create_api_key(user.id)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


async def _login_url(api: httpx.AsyncClient) -> str:
    response = await api.get("/api/v1/integrations/github/login", params={"scopes": "repo"})
    assert response.status_code == 200, response.text
    return str(response.json()["login_url"])


async def _provider_url(browser: httpx.AsyncClient, login_url: str) -> str:
    """What *browser* reaches at the provider when it opens *login_url*."""
    if not login_url.startswith(PUBLIC_URL):
        return login_url  # the code before the fix handed out the provider's URL itself
    start = await browser.get(_path(login_url))
    assert start.status_code == 303, start.text
    return start.headers["location"]


async def _back_from_provider(provider_url: str) -> str:
    """The provider auto-approves (no consent page) and redirects back: the callback path."""
    async with httpx.AsyncClient(trust_env=False) as at_provider:
        response = await at_provider.get(provider_url)
    assert response.status_code == 302, response.text
    return _path(response.headers["location"])


def _confirm_fields(page: str) -> dict[str, str]:
    fields = dict(re.findall(r'name="(flow_id|csrf)" value="([^"]+)"', page))
    assert set(fields) == {"flow_id", "csrf"}, page
    return fields


async def _stored(pilot: Pilot, user: User) -> list[Any]:
    return await pilot.credential_store.list_meta(user.id)


# ----------------------------------------------------------------------- the forwarded link


async def test_a_forwarded_login_url_connects_nothing_in_another_browser(
    browser: Callable[..., httpx.AsyncClient],
    pilot: Pilot,
    alice: User,
    bob: User,
    provider: FakeOAuthProvider,
) -> None:
    bob_api, bob_browser, alice_browser = browser(await _key(pilot, bob)), browser(), browser()
    # Bob starts a login in his own browser and copies the provider's sign-in link...
    provider_url = await _provider_url(bob_browser, await _login_url(bob_api))
    # ... which alice opens: the provider sends her browser (no blockpilot session) back.
    response = await alice_browser.get(await _back_from_provider(provider_url))
    CANARIES.saw("forwarded login callback", response.text)

    assert response.status_code == 400, response.text
    assert "not signed in to blockpilot" in response.text and "Nothing was saved" in response.text
    assert await _stored(pilot, bob) == [] and await _stored(pilot, alice) == []
    assert provider.token_requests == 0  # her code was never even exchanged
    async with pilot.engine.connect() as conn:
        assert (await conn.execute(select(oauth_pending_flows))).all() == []


async def test_a_forwarded_start_link_asks_first_and_names_both_sides(
    browser: Callable[..., httpx.AsyncClient],
    pilot: Pilot,
    alice: User,
    bob: User,
) -> None:
    bob_api, alice_browser = browser(await _key(pilot, bob)), browser()
    # Alice opens bob's whole start link: her browser is signed in as bob for this login.
    provider_url = await _provider_url(alice_browser, await _login_url(bob_api))
    page = await alice_browser.get(await _back_from_provider(provider_url))

    # Nothing is stored by the callback; the page says who gets which account.
    assert page.status_code == 200, page.text
    assert "Connect GitHub to bob?" in page.text and "alice-gh" in page.text
    assert await _stored(pilot, bob) == []
    declined = await alice_browser.post(
        "/oauth/confirm", data={**_confirm_fields(page.text), "decision": "cancel"}
    )
    assert declined.status_code == 200 and "was not connected" in declined.text
    assert await _stored(pilot, bob) == [] and await _stored(pilot, alice) == []
    # The declined flow is gone: confirming it afterwards stores nothing either.
    late = await alice_browser.post(
        "/oauth/confirm", data={**_confirm_fields(page.text), "decision": "connect"}
    )
    assert late.status_code == 410 and await _stored(pilot, bob) == []


async def test_the_confirm_step_needs_the_same_browser_session_and_its_form(
    browser: Callable[..., httpx.AsyncClient],
    pilot: Pilot,
    alice: User,
    bob: User,
) -> None:
    alice_api, alice_browser = browser(await _key(pilot, alice)), browser()
    bob_browser = browser()
    await _provider_url(bob_browser, await _login_url(browser(await _key(pilot, bob))))
    provider_url = await _provider_url(alice_browser, await _login_url(alice_api))
    page = await alice_browser.get(await _back_from_provider(provider_url))
    fields = {**_confirm_fields(page.text), "decision": "connect"}

    # Another browser (bob's session, or none) cannot confirm alice's flow, even with the form.
    for other in (bob_browser, browser()):
        refused = await other.post("/oauth/confirm", data=fields)
        assert refused.status_code == 403 and "Nothing was saved" in refused.text
    # Alice's browser without the form's field, or from another site, cannot either.
    for data, headers in (
        ({**fields, "csrf": "x" * 43}, {}),
        (fields, {"Origin": "https://evil.example"}),
    ):
        refused = await alice_browser.post("/oauth/confirm", data=data, headers=headers)
        assert refused.status_code == 403
    assert await _stored(pilot, alice) == [] and await _stored(pilot, bob) == []

    done = await alice_browser.post("/oauth/confirm", data=fields)
    assert done.status_code == 200 and "Connected." in done.text
    assert "alice-gh" in done.text and "for alice" in done.text
    [meta] = await _stored(pilot, alice)
    assert meta.title == "GitHub (alice-gh)" and await _stored(pilot, bob) == []
    again = await alice_browser.post("/oauth/confirm", data=fields)
    assert again.status_code == 410 and len(await _stored(pilot, alice)) == 1


async def test_a_parked_connect_is_encrypted_and_expires(
    app: FastAPI,
    browser: Callable[..., httpx.AsyncClient],
    pilot: Pilot,
    alice: User,
    provider: FakeOAuthProvider,
) -> None:
    access, refresh = CANARIES.new("oauthat"), CANARIES.new("oauthrt")
    tokens = {"access_token": access, "refresh_token": refresh, "token_type": "bearer"}
    provider.queue_response(Response.json({**tokens, "expires_in": 3600}), path="/token")
    alice_browser = browser()
    provider_url = await _provider_url(
        alice_browser, await _login_url(browser(await _key(pilot, alice)))
    )
    page = await alice_browser.get(await _back_from_provider(provider_url))
    CANARIES.saw("confirm page", page.text)
    assert page.status_code == 200 and access not in page.text

    async with pilot.engine.connect() as conn:
        [row] = (await conn.execute(select(oauth_pending_flows))).all()
    assert row.user_id == alice.id
    for secret in (access, refresh):
        assert secret.encode() not in bytes(row.sealed) and secret not in repr(tuple(row))
    flow_id = _confirm_fields(page.text)["flow_id"]
    assert flow_id not in repr(tuple(row))  # only its hash is stored

    app.state.web.oauth.pending.clock = lambda: time.time() + 601
    late = await alice_browser.post(
        "/oauth/confirm", data={**_confirm_fields(page.text), "decision": "connect"}
    )
    assert late.status_code == 410 and await _stored(pilot, alice) == []


async def test_the_access_log_never_holds_a_start_or_setup_token(
    browser: Callable[..., httpx.AsyncClient],
    pilot: Pilot,
    alice: User,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api, person = browser(await _key(pilot, alice)), browser()
    start = _path(await _login_url(api))
    setup = await _setup_url(api)
    with caplog.at_level(logging.INFO, logger="blockpilot.api.access"):
        assert (await person.get(start)).status_code == 303
        assert (await person.get(setup)).status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "blockpilot.api.access"]
    assert any("/oauth/start/[token]" in line for line in lines)
    assert any("/setup/[token]" in line for line in lines)
    for token in (start.rsplit("/", 1)[1], setup.rsplit("/", 1)[1]):
        assert all(token[:20] not in line for line in lines)


# ------------------------------------------------------------------------- the user verifier


@pytest.mark.parametrize("verifier_url", [VERIFIER])
async def test_user_verifier_only_the_user_who_started_can_verify(
    browser: Callable[..., httpx.AsyncClient],
    pilot: Pilot,
    alice: User,
    bob: User,
) -> None:
    alice_key, bob_key = await _key(pilot, alice), await _key(pilot, bob)
    alice_api, bob_api = browser(alice_key), browser(bob_key)

    async def parked_flow(api: httpx.AsyncClient) -> str:
        # Any browser finishes at the provider; the callback sends it to the host app.
        anyone = browser()
        provider_url = await _provider_url(anyone, await _login_url(api))
        redirect = await anyone.get(await _back_from_provider(provider_url))
        assert redirect.status_code == 303, redirect.text
        target = redirect.headers["location"]
        assert target.startswith(VERIFIER + "&")
        query = parse_qs(urlsplit(target).query)
        assert query["provider"] == ["github"] and query["from"] == ["bp"]
        return query["flow_id"][0]

    # Bob's login, finished by alice's browser; alice's host-app session verifies: refused.
    flow_id = await parked_flow(bob_api)
    assert (await alice_api.get(f"/api/v1/oauth/flows/{flow_id}")).status_code == 404
    refused = await alice_api.post("/api/v1/oauth/verify", json={"flow_id": flow_id})
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "oauth_user_mismatch"
    assert await _stored(pilot, bob) == [] and await _stored(pilot, alice) == []
    # The flow was discarded: bob cannot take it afterwards.
    gone = await bob_api.post("/api/v1/oauth/verify", json={"flow_id": flow_id})
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "oauth_flow_not_found"
    assert await _stored(pilot, bob) == []

    # A user_id that is not the key's user is refused too.
    flow_id = await parked_flow(alice_api)
    mixed = await alice_api.post(
        "/api/v1/oauth/verify", json={"flow_id": flow_id, "user_id": bob.id}
    )
    assert mixed.status_code == 403 and await _stored(pilot, alice) == []

    # Alice's own login, verified by alice: stored, and the answer says which account.
    flow_id = await parked_flow(alice_api)
    shown = await alice_api.get(f"/api/v1/oauth/flows/{flow_id}")
    assert shown.status_code == 200 and shown.json()["account"] == "alice-gh"
    verified = await alice_api.post(
        "/api/v1/oauth/verify", json={"flow_id": flow_id, "user_id": alice.id}
    )
    assert verified.status_code == 200, verified.text
    body = verified.json()
    assert (body["user_id"], body["account"], body["provider"]) == (alice.id, "alice-gh", "github")
    [meta] = await _stored(pilot, alice)
    assert meta.id == body["credential_id"] and await _stored(pilot, bob) == []
    assert (
        await alice_api.post("/api/v1/oauth/verify", json={"flow_id": flow_id})
    ).status_code == 404


@pytest.mark.parametrize("verifier_url", [VERIFIER])
@pytest.mark.parametrize("body", [{}, {"flow_id": ""}, {"flow_id": 1}, {"flow_id": "x", "y": 1}])
async def test_verify_refuses_malformed_bodies(
    browser: Callable[..., httpx.AsyncClient], pilot: Pilot, alice: User, body: dict[str, Any]
) -> None:
    response = await browser(await _key(pilot, alice)).post("/api/v1/oauth/verify", json=body)
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_input"


# ------------------------------------------------------------------- single-use setup links


async def _setup_url(api: httpx.AsyncClient) -> str:
    response = await api.post(
        "/api/v1/tools/run_block",
        json={
            "block_id": GITHUB_ISSUE_ID,
            "input_data": {"issue_url": "https://github.com/o/r/issues/1"},
        },
    )
    [entry] = response.json()["setup_info"]["user_readiness"]["missing_credentials"].values()
    return _path(entry["setup_url"])


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


async def test_a_setup_link_stores_one_credential(
    browser: Callable[..., httpx.AsyncClient], pilot: Pilot, alice: User
) -> None:
    api, person = browser(await _key(pilot, alice)), browser()
    link = await _setup_url(api)
    csrf = _csrf((await person.get(link)).text)
    key1, key2 = CANARIES.new("ghkey"), CANARIES.new("ghkey")
    # A mistake in the form does not use the link up.
    blank = await person.post(link, data={"csrf": csrf, "kind": "api_key", "api_key": ""})
    assert blank.status_code == 422
    saved = await person.post(link, data={"csrf": csrf, "kind": "api_key", "api_key": key1})
    assert saved.status_code == 200 and "Connected." in saved.text

    again = await person.post(link, data={"csrf": csrf, "kind": "api_key", "api_key": key2})
    CANARIES.saw("used setup link", again.text)
    assert again.status_code == 410 and "already used" in again.text
    reopened = await person.get(link)
    assert reopened.status_code == 410 and "already used" in reopened.text
    [meta] = await _stored(pilot, alice)
    stored = await pilot.credential_store.get(alice.id, meta.id)
    assert stored is not None and key1 in stored.secret_values()


async def test_concurrent_submissions_of_one_link_store_one_credential(
    browser: Callable[..., httpx.AsyncClient], pilot: Pilot, alice: User
) -> None:
    api, person = browser(await _key(pilot, alice)), browser()
    link = await _setup_url(api)
    csrf = _csrf((await person.get(link)).text)
    keys = [CANARIES.new("ghkey") for _ in range(4)]
    answers = await asyncio.gather(
        *(person.post(link, data={"csrf": csrf, "kind": "api_key", "api_key": k}) for k in keys)
    )
    assert sorted(a.status_code for a in answers) == [200, 410, 410, 410]
    assert len(await _stored(pilot, alice)) == 1


async def test_a_setup_link_used_by_an_oauth_connect_is_used_up(
    browser: Callable[..., httpx.AsyncClient], pilot: Pilot, alice: User
) -> None:
    api, person = browser(await _key(pilot, alice)), browser()
    link = await _setup_url(api)
    csrf = _csrf((await person.get(link)).text)
    started = await person.post(link + "/connect", data={"csrf": csrf})
    assert started.status_code == 303
    page = await person.get(await _back_from_provider(started.headers["location"]))
    assert "Connect GitHub to alice?" in page.text
    done = await person.post(
        "/oauth/confirm", data={**_confirm_fields(page.text), "decision": "connect"}
    )
    assert done.status_code == 200 and len(await _stored(pilot, alice)) == 1

    assert (await person.get(link)).status_code == 410
    again = await person.post(link + "/connect", data={"csrf": csrf})
    assert again.status_code == 410 and len(await _stored(pilot, alice)) == 1
