"""Signed setup links and the setup page, in-process (public URL ``http://testserver``).

A ``setup_requirements`` response carries a ``setup_url`` on every missing credential; the
page behind it stores what the person enters for that user and that requirement only, and
the same ``run_block`` call then runs the block against local servers speaking the real
protocols (an OpenAI-compatible API, a plain HTTP server, an OAuth2 provider).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from blockpilot.blocks.base import Block, BlockCategory, BlockOutput
from blockpilot.blocks.registry import BlockRegistry
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, SchemaField
from blockpilot.credentials.crypto import KeyRing
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import CredentialsMetaInput, HostScopedCredentials
from blockpilot.errors import SetupLinkError
from blockpilot.links import SETUP_KEY_PURPOSE as KEY_PURPOSE
from blockpilot.links import SetupLinks
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.storage.users import User
from blockpilot.testing import FakeOAuthProvider, FakeOpenAI, LocalHTTPServer, Response

PUBLIC_URL = "http://testserver"
AI_TEXT = "1f292d4a-41a4-4977-9684-7c8d560b9f91"
AUTH_REQUEST = "fff86bcd-e001-4bad-a7f6-2eae4720c8dc"
OPENAI_KEY = "sk-setup-page-test-0123456789abcdef"


class TwoAccountsBlock(Block):
    id = "5e7a0c2d-9b1f-4c3e-8a6d-2f4b1c0e9d71"
    description = "Test block needing an OpenAI key and a GitHub account."
    categories = frozenset({BlockCategory.DEVELOPER_TOOLS})

    class Input(BlockSchemaInput):
        text: str = SchemaField(description="Some text")
        openai_credentials: CredentialsMetaInput = CredentialsField(
            providers=["openai"], supported_types=["api_key"], description="OpenAI key"
        )
        github_credentials: CredentialsMetaInput = CredentialsField(
            providers=["github"],
            supported_types=["api_key", "oauth2"],
            required_scopes=["repo"],
            description="GitHub account",
        )

    class Output(BlockSchemaOutput):
        ok: bool = SchemaField(description="Always true")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        yield "ok", True


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_keys={OPENAI_KEY}) as srv:
        yield srv


@pytest.fixture
def settings(
    settings_factory, monkeypatch: pytest.MonkeyPatch, openai_server: FakeOpenAI
) -> Settings:
    built = settings_factory(http_allowed_hosts=("127.0.0.1",), public_url=PUBLIC_URL)
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_OPENAI_BASE_URL", openai_server.base_url)
    return built


@pytest.fixture
def pilot_registry() -> BlockRegistry:
    return BlockRegistry([*BlockRegistry.default_sources(), ("setup", lambda: (TwoAccountsBlock,))])


async def run_block(
    client: httpx.AsyncClient, block_id: str, input_data: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/tools/run_block", json={"block_id": block_id, "input_data": input_data}
    )
    assert response.status_code == 200, response.text
    return response.json()


def missing_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert body["type"] == "setup_requirements", body
    return body["setup_info"]["user_readiness"]["missing_credentials"]


def setup_path(entry: dict[str, Any]) -> str:
    url = entry["setup_url"]
    assert url.startswith(PUBLIC_URL + "/setup/")
    return urlsplit(url).path


def payload_of(path: str) -> dict[str, Any]:
    body = path.rsplit("/", 1)[1].split(".")[0]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


async def open_page(client: httpx.AsyncClient, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response.text


async def submit(
    client: httpx.AsyncClient, path: str, form: dict[str, Any], csrf: str | None = None
) -> httpx.Response:
    if csrf is None:
        csrf = csrf_of(await open_page(client, path))
    return await client.post(path, data={"csrf": csrf, **form})


AI_INPUT = {"prompt": "hello there", "model": "gpt-4o-mini"}


async def test_every_missing_credential_gets_its_own_setup_url(
    as_alice: httpx.AsyncClient, alice: User, alice_key: str
) -> None:
    body = await run_block(as_alice, TwoAccountsBlock.id, {"text": "x"})
    missing = missing_of(body)
    assert set(missing) == {"openai_credentials", "github_credentials"}
    listed = body["setup_info"]["requirements"]["credentials"]
    assert [e["setup_url"] for e in listed] == [e["setup_url"] for e in missing.values()]
    payloads = {name: payload_of(setup_path(entry)) for name, entry in missing.items()}
    assert payloads["github_credentials"] | {"iat": 0, "exp": 0} == {
        "v": 1, "u": alice.id, "b": TwoAccountsBlock.id, "f": "github_credentials",
        "p": "github", "t": ["api_key", "oauth2"], "s": ["repo"], "h": None, "iat": 0, "exp": 0,
    }  # fmt: skip
    assert payloads["openai_credentials"]["p"] == "openai"
    for payload in payloads.values():
        assert 1790 <= payload["exp"] - time.time() <= 1800
    for entry in missing.values():
        assert alice_key not in entry["setup_url"] and alice_key[3:20] not in entry["setup_url"]


async def test_setup_url_also_in_in_process_tool_calls(
    pilot: Pilot, app: FastAPI, alice: User
) -> None:
    response = await pilot.call_tool(
        "run_block", {"block_id": AI_TEXT, "input_data": AI_INPUT}, user_id=alice.id
    )
    [entry] = response.model_dump()["setup_info"]["requirements"]["credentials"]
    assert entry["setup_url"].startswith(PUBLIC_URL + "/setup/")


async def test_page_shows_block_requirement_and_an_accessible_form(
    as_alice: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    [entry] = missing_of(await run_block(as_alice, AI_TEXT, AI_INPUT)).values()
    response = await anon.get(setup_path(entry))
    page = response.text
    assert response.status_code == 200
    assert '<html lang="en">' in page
    for landmark in ('role="banner"', "<main", 'role="contentinfo"'):
        assert landmark in page
    assert page.count("<h1>") == 1 and "Connect OpenAI to continue" in page
    assert "AI Text Generator" in page and "AITextGeneratorBlock" in page
    assert "alice" in page and "API key" in page
    assert '<label for="key-secret">OpenAI API key</label>' in page
    assert 'id="key-secret" name="api_key"' in page and 'type="password"' in page
    assert "Connect OpenAI</button>" not in page  # no OAuth app for OpenAI
    assert "<script" not in page
    headers = response.headers
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"


async def test_posting_the_form_stores_the_key_for_that_user_and_the_run_goes_through(
    as_alice: httpx.AsyncClient,
    as_bob: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    pilot: Pilot,
    alice: User,
    bob: User,
    openai_server: FakeOpenAI,
) -> None:
    [entry] = missing_of(await run_block(as_alice, AI_TEXT, AI_INPUT)).values()
    path = setup_path(entry)

    response = await submit(
        anon,
        path,
        # Extra fields cannot change whose credential it is, its provider or its type.
        {"kind": "api_key", "api_key": f"  {OPENAI_KEY} ", "title": "My key",
         "provider": "anthropic", "type": "oauth2", "user_id": bob.id},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert "Connected. Go back to the chat and ask the copilot to continue." in " ".join(
        re.sub(r"<[^>]+>", " ", response.text).split()
    )
    assert OPENAI_KEY not in response.text
    [meta] = await pilot.credential_store.list_meta(alice.id)
    assert (meta.provider, meta.type, meta.title) == ("openai", "api_key", "My key")
    assert await pilot.credential_store.list_meta(bob.id) == []

    body = await run_block(as_alice, AI_TEXT, AI_INPUT)
    assert body["type"] == "block_output", body
    assert body["outputs"]["response"] == ["echo: hello there"]
    assert openai_server.last_request is not None
    assert openai_server.last_request.header("authorization") == f"Bearer {OPENAI_KEY}"
    # Bob still has nothing: his own run still asks him to set up a key.
    missing_of(await run_block(as_bob, AI_TEXT, AI_INPUT))


async def test_host_scoped_headers_with_the_runs_host_prefilled(
    as_alice: httpx.AsyncClient, anon: httpx.AsyncClient, pilot: Pilot, alice: User
) -> None:
    with LocalHTTPServer() as api:
        api.add_route("GET", "/data", Response.json({"ok": True}))
        url = api.url("/data")
        request_input = {"url": url, "method": "GET"}
        [entry] = missing_of(await run_block(as_alice, AUTH_REQUEST, request_input)).values()
        host = f"127.0.0.1:{api.port}"
        assert entry["host"] == host
        page = await open_page(anon, setup_path(entry))
        assert f'id="hdr-host" name="host" required maxlength="300" value="{host}"' in page
        assert '<label for="hdr-name-0">Header name</label>' in page

        response = await submit(
            anon,
            setup_path(entry),
            {"kind": "host_scoped", "host": host, "header_name": ["X-Api-Key", ""],
             "header_value": ["hdr-secret-42", ""]},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        assert "hdr-secret-42" not in response.text
        [meta] = await pilot.credential_store.list_meta(alice.id)
        creds = await pilot.credential_store.get(alice.id, meta.id)
        assert isinstance(creds, HostScopedCredentials) and creds.provider == "http"
        assert creds.host == host and creds.header_values() == {"X-Api-Key": "hdr-secret-42"}

        body = await run_block(as_alice, AUTH_REQUEST, request_input)
        assert body["type"] == "block_output", body
        assert api.last_request is not None
        assert api.last_request.header("x-api-key") == "hdr-secret-42"


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"kind": "api_key", "api_key": "   "}, "Enter the API key."),
        ({"kind": "api_key", "api_key": "k" * 9000}, "at most 8192"),
    ],
)
async def test_invalid_input_shows_the_form_again_without_the_secret(
    as_alice: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    pilot: Pilot,
    alice: User,
    form: dict[str, str],
    message: str,
) -> None:
    [entry] = missing_of(await run_block(as_alice, AI_TEXT, AI_INPUT)).values()
    response = await submit(anon, setup_path(entry), {**form, "title": "Kept <title>"})
    assert response.status_code == 422
    assert 'role="alert"' in response.text and "Error:" in response.text
    assert message in response.text
    assert "k" * 100 not in response.text
    assert 'value="Kept &lt;title&gt;"' in response.text  # non-secret input is kept, escaped
    assert await pilot.credential_store.list_meta(alice.id) == []


async def test_host_form_problems_are_explained(
    as_alice: httpx.AsyncClient, anon: httpx.AsyncClient, pilot: Pilot, alice: User
) -> None:
    body = await run_block(as_alice, AUTH_REQUEST, {"url": "http://127.0.0.1:9/x", "method": "GET"})
    [entry] = missing_of(body).values()
    for form, message in [
        ({"host": "127.0.0.1:9", "header_name": ["X-Key"], "header_value": [""]}, "needs both"),
        ({"host": "127.0.0.1:9", "header_name": [""], "header_value": [""]}, "at least one header"),
        ({"host": "", "header_name": ["X-Key"], "header_value": ["v-secret-1"]}, "Enter the host"),
        ({"host": "../x", "header_name": ["X-Key"], "header_value": ["v-secret-1"]}, "host"),
    ]:
        response = await submit(anon, setup_path(entry), {"kind": "host_scoped", **form})
        assert response.status_code == 422, form
        assert message in response.text and "v-secret-1" not in response.text
    assert await pilot.credential_store.list_meta(alice.id) == []


async def test_a_type_the_requirement_does_not_accept_is_refused(
    as_alice: httpx.AsyncClient, anon: httpx.AsyncClient, pilot: Pilot, alice: User
) -> None:
    [entry] = missing_of(await run_block(as_alice, AI_TEXT, AI_INPUT)).values()
    for kind in ("user_password", "oauth2", "host_scoped", ""):
        response = await submit(
            anon, setup_path(entry), {"kind": kind, "username": "u", "password": "p"}
        )
        assert response.status_code == 400
    assert await pilot.credential_store.list_meta(alice.id) == []


async def test_post_needs_the_forms_csrf_field_of_the_same_link(
    as_alice: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    pilot: Pilot,
    alice: User,
) -> None:
    [entry] = missing_of(await run_block(as_alice, AI_TEXT, AI_INPUT)).values()
    [other] = missing_of(
        await run_block(as_alice, AUTH_REQUEST, {"url": "http://127.0.0.1:9/"})
    ).values()
    path = setup_path(entry)
    other_csrf = csrf_of(await open_page(anon, setup_path(other)))
    form = {"kind": "api_key", "api_key": OPENAI_KEY}
    for csrf in ("", "x", other_csrf, csrf_of(await open_page(anon, path))[:-2]):
        response = await submit(anon, path, form, csrf=csrf)
        assert response.status_code == 403, csrf
        assert "did not come from this page" in response.text
    # A browser posting from another site is refused even with the right field.
    good = csrf_of(await open_page(anon, path))
    response = await anon.post(
        path, data={"csrf": good, **form}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert await pilot.credential_store.list_meta(alice.id) == []
    # Same origin, or "null" (what a no-referrer page sends), is fine.
    response = await anon.post(path, data={"csrf": good, **form}, headers={"Origin": "null"})
    assert response.status_code == 200


async def test_form_must_be_urlencoded_and_small(
    as_alice: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    [entry] = missing_of(await run_block(as_alice, AI_TEXT, AI_INPUT)).values()
    path = setup_path(entry)
    assert (await anon.post(path, json={"kind": "api_key"})).status_code == 415
    big = await anon.post(path, data={"kind": "api_key", "api_key": "k" * 70_000})
    assert big.status_code == 413


def tamper(path: str, how: str) -> str:
    token = path.rsplit("/", 1)[1]
    body, signature = token.split(".")
    if how == "payload":
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        data["u"] = "00000000-0000-4000-8000-000000000000"
        forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
        return f"/setup/{forged}.{signature}"
    if how == "signature":
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
        return f"/setup/{body}.{flipped}"
    if how == "unsigned":
        return f"/setup/{body}"
    if how == "garbage":
        return "/setup/not-a-token"
    if how == "empty-signature":
        return f"/setup/{body}."
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["payload", "signature", "unsigned", "garbage", "empty-signature"])
async def test_tampered_links_are_400_and_store_nothing(
    how: str, as_alice: httpx.AsyncClient, anon: httpx.AsyncClient, pilot: Pilot, alice: User
) -> None:
    [entry] = missing_of(await run_block(as_alice, AI_TEXT, AI_INPUT)).values()
    good = setup_path(entry)
    csrf = csrf_of(await open_page(anon, good))
    bad = tamper(good, how)
    response = await anon.get(bad)
    assert response.status_code == 400
    assert "This setup link is not valid" in response.text
    posted = await anon.post(bad, data={"csrf": csrf, "kind": "api_key", "api_key": OPENAI_KEY})
    assert posted.status_code == 400
    assert await pilot.credential_store.list_meta(alice.id) == []


async def test_link_signed_with_another_key_is_refused(
    app: FastAPI, as_alice: httpx.AsyncClient, anon: httpx.AsyncClient, alice: User
) -> None:
    foreign = SetupLinks(
        KeyRing.from_strings([KeyRing.generate_key()]).derived_keys(KEY_PURPOSE), PUBLIC_URL
    )
    url = foreign.url(
        alice.id, AI_TEXT, {"id": "credentials", "provider": "openai", "types": ["api_key"]}
    )
    assert (await anon.get(urlsplit(url).path)).status_code == 400


async def test_expired_links_are_410(
    app: FastAPI, as_alice: httpx.AsyncClient, anon: httpx.AsyncClient, pilot: Pilot, alice: User
) -> None:
    [entry] = missing_of(await run_block(as_alice, AI_TEXT, AI_INPUT)).values()
    path = setup_path(entry)
    csrf = csrf_of(await open_page(anon, path))
    app.state.web.links.clock = lambda: time.time() + 1801
    response = await anon.get(path)
    assert response.status_code == 410 and "expired" in response.text
    posted = await anon.post(path, data={"csrf": csrf, "kind": "api_key", "api_key": OPENAI_KEY})
    assert posted.status_code == 410
    assert await pilot.credential_store.list_meta(alice.id) == []


def test_links_verify_across_a_key_rotation() -> None:
    old, new = KeyRing.generate_key(), KeyRing.generate_key()
    entry = {"id": "credentials", "provider": "openai", "types": ["api_key"]}
    before = SetupLinks(KeyRing.from_strings([old]).derived_keys(KEY_PURPOSE), PUBLIC_URL)
    token = before.token("u1", AI_TEXT, entry)
    rotated = SetupLinks(KeyRing.from_strings([new, old]).derived_keys(KEY_PURPOSE), PUBLIC_URL)
    assert rotated.verify(token).user_id == "u1"
    assert rotated.csrf_ok(token, before.csrf_token(token))
    dropped = SetupLinks(KeyRing.from_strings([new]).derived_keys(KEY_PURPOSE), PUBLIC_URL)
    with pytest.raises(SetupLinkError):
        dropped.verify(token)
    # Subkeys differ by purpose: a setup-link key is not the encryption key, nor another's.
    ring = KeyRing.from_strings([old])
    assert ring.derived_keys("setup-links") != ring.derived_keys("other")
    assert base64.urlsafe_b64decode(old) not in ring.derived_keys("setup-links")


async def test_access_log_never_holds_the_token(
    as_alice: httpx.AsyncClient, anon: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    [entry] = missing_of(await run_block(as_alice, AI_TEXT, AI_INPUT)).values()
    token = setup_path(entry).rsplit("/", 1)[1]
    with caplog.at_level(logging.INFO, logger="blockpilot.api.access"):
        await anon.get(setup_path(entry))
    lines = [r.getMessage() for r in caplog.records if r.name == "blockpilot.api.access"]
    assert any("/setup/[token]" in line for line in lines)
    assert all(token[:20] not in line for line in lines)


# -- OAuth from the setup page ----------------------------------------------------------------

GITHUB_ISSUE = "b4a3c2f1-6e5d-4c8b-9a7f-0e1d2c3b4a59"


@pytest.fixture
def github_oauth(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> Iterator[FakeOAuthProvider]:
    with FakeOAuthProvider(client_id="gh", client_secret="gh-secret", login="mona") as srv:
        prefix = "BLOCKPILOT_PROVIDER_GITHUB_"
        for key, value in {
            "CLIENT_ID": "gh", "CLIENT_SECRET": "gh-secret", "AUTHORIZE_URL": srv.authorize_url,
            "TOKEN_URL": srv.token_url, "USERINFO_URL": srv.userinfo_url,
        }.items():  # fmt: skip
            monkeypatch.setenv(prefix + key, value)
        yield srv


async def test_connect_button_signs_in_with_the_provider_for_the_links_user(
    github_oauth: FakeOAuthProvider,
    as_alice: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    pilot: Pilot,
    alice: User,
    bob: User,
) -> None:
    issue = {"issue_url": "https://github.com/o/r/issues/1"}
    [entry] = missing_of(await run_block(as_alice, GITHUB_ISSUE, issue)).values()
    assert entry["types"] == ["api_key", "oauth2"] and entry["scopes"] == ["repo"]
    page = await open_page(anon, setup_path(entry))
    assert "Connect GitHub</button>" in page and "Add an API key" in page
    assert page.index("Connect GitHub") < page.index("Add an API key")

    redirect = await anon.post(setup_path(entry) + "/connect", data={"csrf": csrf_of(page)})
    assert redirect.status_code == 303
    assert redirect.headers["referrer-policy"] == "no-referrer"
    login_url = redirect.headers["location"]
    assert login_url.startswith(github_oauth.authorize_url + "?")
    assert parse_qs(urlsplit(login_url).query)["scope"] == ["read:user repo"]
    async with httpx.AsyncClient(trust_env=False) as browser:
        back = (await browser.get(login_url)).headers["location"]
    # The browser that opened the link is signed in as Alice: it is asked to confirm which
    # account goes to which blockpilot user, and only its confirmation stores the account.
    confirm = await anon.get(urlsplit(back).path + "?" + urlsplit(back).query)
    assert confirm.status_code == 200, confirm.text
    assert "Connect GitHub to alice?" in confirm.text and "mona" in confirm.text
    assert await pilot.credential_store.list_meta(alice.id) == []
    fields = dict(re.findall(r'name="(flow_id|csrf)" value="([^"]+)"', confirm.text))
    done = await anon.post("/oauth/confirm", data={**fields, "decision": "connect"})
    assert done.status_code == 200, done.text
    assert "Connected." in done.text and "Read Issue" in done.text and "mona" in done.text
    assert "for alice" in done.text
    [meta] = await pilot.credential_store.list_meta(alice.id)
    assert (meta.provider, meta.type, meta.scopes) == ("github", "oauth2", ["read:user", "repo"])
    assert await pilot.credential_store.list_meta(bob.id) == []
    # The requirement is now met (a dry run resolves credentials without calling GitHub).
    response = await as_alice.post(
        "/api/v1/tools/run_block",
        json={"block_id": GITHUB_ISSUE, "input_data": issue, "dry_run": True},
    )
    body = response.json()
    assert body["type"] == "block_output" and body["is_dry_run"] is True, body
    assert [c["id"] for c in body["credentials_used"]] == [meta.id]


async def test_connect_needs_csrf_and_a_configured_app(
    as_alice: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    [entry] = missing_of(
        await run_block(as_alice, GITHUB_ISSUE, {"issue_url": "https://github.com/o/r/issues/1"})
    ).values()
    page = await open_page(anon, setup_path(entry))
    assert "Connect GitHub</button>" not in page  # no GitHub app configured in this test
    assert "Add an API key" in page
    response = await anon.post(setup_path(entry) + "/connect", data={"csrf": csrf_of(page)})
    assert response.status_code == 404 and "not available" in response.text
    response = await anon.post(setup_path(entry) + "/connect", data={"csrf": "nope"})
    assert response.status_code == 403


async def test_setup_posts_count_against_the_users_rate_limit(
    as_alice: httpx.AsyncClient, anon: httpx.AsyncClient, app: FastAPI
) -> None:
    from blockpilot.limits import InProcessRateLimiter

    [entry] = missing_of(await run_block(as_alice, AI_TEXT, AI_INPUT)).values()
    path = setup_path(entry)
    csrf = csrf_of(await open_page(anon, path))
    app.state.limiter = InProcessRateLimiter(per_minute=1, max_concurrent=1)
    form = {"csrf": csrf, "kind": "api_key", "api_key": ""}
    assert (await anon.post(path, data=form)).status_code == 422  # spends the one request
    limited = await anon.post(path, data=form)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "Too many" in limited.text


async def test_smtp_form_names_the_server_the_run_asked_for_and_binds_the_credential(
    as_alice: httpx.AsyncClient, anon: httpx.AsyncClient, pilot: Pilot, alice: User
) -> None:
    """SMTP credentials are bound to their server (docs/security.md): the form asks for it."""
    from blockpilot.testing import FakeSMTP

    email_block = "4335878a-394e-4e67-adf2-919877ff49ae"
    with FakeSMTP(username="me@example.com", password="smtp-pw-4242") as smtp:
        mail = {"to_email": "b@example.org", "subject": "s", "body": "b",
                "smtp_server": "127.0.0.1", "smtp_port": smtp.port}  # fmt: skip
        [entry] = missing_of(await run_block(as_alice, email_block, mail)).values()
        server = f"127.0.0.1:{smtp.port}"
        assert entry["host"] == server
        page = await open_page(anon, setup_path(entry))
        assert f'name="host" required maxlength="300" value="{server}"' in page
        response = await submit(
            anon,
            setup_path(entry),
            {"kind": "user_password", "host": server, "username": "me@example.com",
             "password": "smtp-pw-4242"},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        [meta] = await pilot.credential_store.list_meta(alice.id)
        assert meta.host == server and not meta.needs_host
        body = await run_block(as_alice, email_block, mail)
        assert body["type"] == "block_output", body
        assert [login for _, login, ok in smtp.auth_attempts if ok] == ["me@example.com"]
