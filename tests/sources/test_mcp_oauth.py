"""A remote MCP server behind OAuth: each user connects their own account, end to end.

The upstream is the notes server behind the MCP authorization spec (protected-resource
metadata, the ``mcp`` SDK's own authorization server with dynamic registration and PKCE, on
another port). add → find → ``{}`` → setup requirements → the setup page's connect button →
the authorization server → the callback → the signed-in browser confirms → run → output;
two users with two tokens reach the server as themselves; a user without a token never
reaches it; refresh happens once when runs race; a refused token is refreshed once, then
"reconnect"; a 403 ``insufficient_scope`` names the scope. No token ever shows up in a
response, a log line or a database row.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from blockpilot.api import create_app
from blockpilot.errors import InvalidInputError
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.sources.base import source_block_id
from blockpilot.storage.tables import metadata
from blockpilot.storage.users import User

from .mcp_oauth_servers import OAuthUpstream, oauth_mcp_server

ADD = source_block_id("notes", "tool:add")
WHOAMI = source_block_id("notes", "tool:whoami")
SNAPSHOT = source_block_id("notes", "tool:snapshot")


@pytest.fixture
def settings(settings_factory: Any) -> Settings:
    return settings_factory(public_url="http://testserver", admin_users=("alice",))


@pytest.fixture
async def upstream() -> AsyncIterator[OAuthUpstream]:
    async with oauth_mcp_server() as up:
        yield up


def operator_header(up: OAuthUpstream) -> dict[str, str]:
    """A token of the operator's own account, for listing the tools when adding."""
    issued = up.auth._issue("operator-app", "operator", ["notes:read"], up.mcp_url)
    return {"Authorization": f"Bearer {issued.access_token}"}


@pytest.fixture
async def notes(pilot: Pilot, upstream: OAuthUpstream) -> Pilot:
    result = await pilot.sources.add_mcp(
        "notes", upstream.mcp_url, auth="oauth", headers=operator_header(upstream)
    )
    assert result.to_dict() == {"name": "notes", "kind": "mcp", "blocks": 4, "skipped": []}
    _APPS[pilot] = create_app(pilot)  # the setup page and the OAuth routes for this Pilot
    return pilot


_APPS: weakref.WeakKeyDictionary[Pilot, Any] = weakref.WeakKeyDictionary()


def browser(pilot: Pilot) -> httpx.AsyncClient:
    """A person's browser at blockpilot (its own cookies)."""
    transport = httpx.ASGITransport(app=_APPS[pilot])
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def run(pilot: Pilot, user: User, block: str, data: dict[str, Any], chat: str) -> Any:
    return await pilot.call_tool(
        "run_block", {"block_id": block, "input_data": data}, user_id=user.id, session_id=chat
    )


async def connect(pilot: Pilot, up: OAuthUpstream, setup_url: str, account: str) -> str:
    """The person opens the setup link, presses Connect, signs in at the authorization server
    as *account*, and confirms in the same browser. Returns the authorization URL used."""
    path = urlsplit(setup_url).path
    async with browser(pilot) as person:
        page = await person.get(path)
        assert page.status_code == 200, page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None and f"{path}/connect" in page.text, page.text
        started = await person.post(path + "/connect", data={"csrf": csrf.group(1)})
        assert started.status_code == 303, started.text
        login_url = started.headers["location"]
        up.auth.signed_in = account
        async with httpx.AsyncClient(trust_env=False) as at_the_server:
            back = await at_the_server.get(login_url)
        assert back.status_code == 302, back.text
        callback = urlsplit(back.headers["location"])
        page = await person.get(callback.path + "?" + callback.query)
        assert page.status_code == 200 and 'name="flow_id"' in page.text, page.text
        fields = dict(re.findall(r'name="(flow_id|csrf)" value="([^"]+)"', page.text))
        done = await person.post("/oauth/confirm", data={**fields, "decision": "connect"})
        assert done.status_code == 200 and "Connected." in done.text, done.text
    return login_url


async def needs_setup(pilot: Pilot, user: User, chat: str) -> str:
    needs = await run(pilot, user, ADD, {}, chat)
    assert needs.type == "setup_requirements", needs
    [entry] = needs.setup_info.user_readiness.missing_credentials.values()
    assert (entry["provider"], entry["types"]) == ("notes", ["oauth2"])
    assert entry["setup_url"]
    return str(entry["setup_url"])


async def every_row(pilot: Pilot) -> str:
    rows = []
    async with pilot.engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows += [repr(tuple(r)) for r in (await conn.execute(select(table))).all()]
    return "\n".join(rows)


async def test_discovery_is_stored_with_the_source(notes: Pilot, upstream: OAuthUpstream) -> None:
    shown = await notes.sources.show("notes")
    assert shown["auth"] == "oauth"
    assert shown["oauth"] == {
        "resource": upstream.mcp_url,
        "issuer": upstream.issuer,
        "scopes": ["notes:read", "notes:images"],
    }
    assert {op["credentials"][0] for op in shown["operations"]} == {"oauth2"}
    provider = notes.oauth_provider("notes")
    assert provider is not None
    assert provider.token_url == upstream.issuer + "/token"
    assert provider.resource == upstream.mcp_url and provider.client_id == ""  # not registered
    # refresh lists the tools and discovers again; the source stays an OAuth source.
    refreshed = await notes.sources.refresh("notes", headers=operator_header(upstream))
    assert refreshed.to_dict()["blocks"] == 4
    assert (await notes.sources.show("notes"))["oauth"]["issuer"] == upstream.issuer


async def test_connect_run_two_users(
    notes: Pilot, upstream: OAuthUpstream, alice: User, bob: User, caplog: pytest.LogCaptureFixture
) -> None:
    up = upstream
    before, refused = list(up.seen.calls), up.seen.refused  # the discovery probe was refused
    found = await notes.call_tool("find_block", {"query": "add two integers"}, user_id=alice.id)
    assert ADD in [b.id for b in found.blocks]
    alice_chat = (await notes.session_for(alice.id, None)).session_id
    bob_chat = (await notes.session_for(bob.id, None)).session_id
    alice_link = await needs_setup(notes, alice, alice_chat)
    bob_link = await needs_setup(notes, bob, bob_chat)
    # Without a token nobody reaches the server.
    assert up.seen.calls == before and up.seen.refused == refused

    login_url = await connect(notes, up, alice_link, "alice")
    query = parse_qs(urlsplit(login_url).query)
    [client_id] = query["client_id"]
    assert client_id in up.auth.clients  # registered dynamically (RFC 7591)
    assert [r["path"] for r in up.as_requests].count("/register") == 1
    assert query["resource"] == [up.mcp_url]  # RFC 8707
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    assert query["scope"] == ["notes:read notes:images"]
    assert query["redirect_uri"] == ["http://testserver/api/v1/integrations/notes/callback"]

    ran = await run(notes, alice, ADD, {"a": 2, "b": 3}, alice_chat)
    assert ran.type == "block_output", ran
    assert ran.outputs["result"] == [{"result": 5}]
    # Bob is still not connected: setup, and the server never sees him.
    assert (await run(notes, bob, ADD, {"a": 1, "b": 1}, bob_chat)).type == "setup_requirements"
    assert "bob" not in up.seen.users()

    await connect(notes, up, bob_link, "bob")
    assert [r["path"] for r in up.as_requests].count("/register") == 1  # one client per source
    who = await run(notes, bob, WHOAMI, {"run": True}, bob_chat)
    assert who.type == "block_output", who
    assert who.outputs["result"] == [{"user": "bob"}]
    who = await run(notes, alice, WHOAMI, {"run": True}, alice_chat)
    assert who.outputs["result"] == [{"user": "alice"}]

    # Every request carried its own user's token; the tokens went to the MCP server only.
    assert up.seen.users() <= {"alice", "bob", "operator"}
    assert up.seen.initializes("alice") == 1 and up.seen.initializes("bob") == 1
    tokens = set(up.tokens_seen)
    assert {up.auth.user_of(t) for t in tokens} <= {"alice", "bob", "operator"}
    assert not any(
        t in str(r["headers"]) for r in up.as_requests for t in tokens
    )  # never sent to the authorization server
    # No token in a response, a log line or a database row (they are stored sealed).
    metas = await notes.credential_store.list_meta(alice.id)
    assert [(m.provider, m.type) for m in metas] == [("notes", "oauth2")]
    refresh_tokens = list(up.auth.refresh)
    secrets = [t for t in tokens if not t.startswith("at-operator")] + refresh_tokens
    secrets += [c.client_secret for c in up.auth.clients.values() if c.client_secret]
    seen_text = ran.model_dump_json() + who.model_dump_json() + caplog.text
    seen_text += await every_row(notes)
    assert secrets and not [s for s in secrets if s in seen_text]


async def test_tokens_refresh_once_when_runs_race(
    notes: Pilot, upstream: OAuthUpstream, alice: User
) -> None:
    up = upstream
    chat = (await notes.session_for(alice.id, None)).session_id
    up.auth.token_seconds = 60  # within the refresh margin: the next run refreshes
    await connect(notes, up, await needs_setup(notes, alice, chat), "alice")
    up.auth.token_seconds = 3600
    chats = [(await notes.session_for(alice.id, None)).session_id for _ in range(4)]
    results = await asyncio.gather(
        *(run(notes, alice, ADD, {"a": n, "b": 1}, c) for n, c in enumerate(chats))
    )
    assert [r.type for r in results] == ["block_output"] * 4, results
    assert up.auth.refreshes == 1  # one refresh at the token endpoint for four racing runs
    token_requests = [r for r in up.as_requests if r["path"] == "/token"]
    assert len(token_requests) == 2  # the code exchange and the one refresh


async def test_a_refused_token_is_refreshed_once_then_reconnect(
    notes: Pilot, upstream: OAuthUpstream, alice: User
) -> None:
    up = upstream
    chat = (await notes.session_for(alice.id, None)).session_id
    await connect(notes, up, await needs_setup(notes, alice, chat), "alice")
    up.auth.revoke_user("alice")  # the server forgets the access token before it expires
    ran = await run(notes, alice, ADD, {"a": 1, "b": 1}, chat)
    assert ran.type == "block_output", ran  # refreshed once, then the call went through
    assert up.auth.refreshes == 1

    up.auth.revoke_user("alice")
    up.auth.refuse_refresh = True  # and now the grant is gone too
    again = await run(notes, alice, ADD, {"a": 1, "b": 1}, chat)
    assert again.type == "setup_requirements", again
    assert "reconnect" in again.message and "401" in again.message
    [entry] = again.setup_info.user_readiness.missing_credentials.values()
    assert entry["provider"] == "notes" and entry["setup_url"]
    assert up.auth.refreshes == 1


async def test_a_missing_scope_is_named(notes: Pilot, upstream: OAuthUpstream, alice: User) -> None:
    up = upstream
    chat = (await notes.session_for(alice.id, None)).session_id
    await connect(notes, up, await needs_setup(notes, alice, chat), "alice")  # notes:read only
    ran = await run(notes, alice, SNAPSHOT, {"run": True}, chat)
    assert ran.type == "error", ran
    assert "notes:images" in ran.message and "insufficient_scope" in ran.message
    assert ran.details == {"cause": "insufficient_scope"}


async def test_operator_client_and_no_registration(pilot: Pilot) -> None:
    async with oauth_mcp_server(registration=False) as up:
        with pytest.raises(InvalidInputError, match="dynamic client registration"):
            await pilot.sources.add_mcp(
                "notes", up.mcp_url, auth="oauth", headers=operator_header(up)
            )
        await pilot.sources.add_mcp(
            "notes",
            up.mcp_url,
            auth="oauth",
            headers=operator_header(up),
            client_id="ops-app",
            client_secret="ops-secret-canary-5e1f",
            scopes=("notes:read",),
        )
        provider = pilot.oauth_provider("notes")
        assert provider is not None and provider.client_id == "ops-app"
        assert provider.client_secret.get_secret_value() == "ops-secret-canary-5e1f"
        assert provider.scopes == ("notes:read",)
        assert "ops-secret-canary-5e1f" not in await every_row(pilot)


async def test_a_plain_server_is_not_an_oauth_server(pilot: Pilot) -> None:
    from .mcp_servers import time_mcp_server

    async with time_mcp_server() as url:
        with pytest.raises(InvalidInputError, match="protected-resource metadata"):
            await pilot.sources.add_mcp("clock", url, auth="oauth")
    with pytest.raises(InvalidInputError, match="need --auth oauth"):
        await pilot.sources.add_mcp("clock", "http://127.0.0.1:1/mcp", client_id="x")


# -- the HTTP door -----------------------------------------------------------------------------


async def in_chat(client: httpx.AsyncClient, name: str, args: dict[str, Any], chat: str) -> Any:
    response = await client.post(
        f"/api/v1/tools/{name}", json=args, headers={"X-Session-Id": chat} if chat else {}
    )
    assert response.status_code == 200, response.text
    return response.json(), response.headers["X-Session-Id"]


async def test_http_add_connect_by_start_link_run(
    pilot: Pilot, upstream: OAuthUpstream, alice: User, bob: User
) -> None:
    up = upstream
    app = _APPS[pilot] = create_app(pilot)
    keys = {u.name: await pilot.users.create_api_key(u.id) for u in (alice, bob)}

    def api(user: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {keys[user]}"},
        )

    async with api("alice") as as_alice, api("bob") as as_bob:
        body = {"kind": "mcp", "name": "notes", "url": up.mcp_url, "auth": "oauth",
                "headers": operator_header(up), "scopes": ["notes:read"]}  # fmt: skip
        added = await as_alice.post("/api/v1/sources", json=body)
        assert added.status_code == 201, added.text
        assert added.json()["blocks"] == 4
        bad = await as_alice.post(
            "/api/v1/sources", json={**body, "name": "notes2", "scopes": ['a "b']}
        )
        assert bad.status_code == 422

        needs, chat = await in_chat(as_bob, "run_block", {"block_id": ADD, "input_data": {}}, "")
        assert needs["type"] == "setup_requirements", needs
        [entry] = needs["setup_info"]["user_readiness"]["missing_credentials"].values()
        assert entry["provider"] == "notes" and entry["setup_url"]

        login = await as_bob.get("/api/v1/integrations/notes/login")
        assert login.status_code == 200, login.text
        start = urlsplit(login.json()["login_url"])
        async with browser(pilot) as person:
            opened = await person.get(start.path)
            assert opened.status_code in (302, 303, 307), opened.text
            up.auth.signed_in = "bob"
            async with httpx.AsyncClient(trust_env=False) as at_the_server:
                back = await at_the_server.get(opened.headers["location"])
            callback = urlsplit(back.headers["location"])
            page = await person.get(callback.path + "?" + callback.query)
            fields = dict(re.findall(r'name="(flow_id|csrf)" value="([^"]+)"', page.text))
            done = await person.post("/oauth/confirm", data={**fields, "decision": "connect"})
            assert "Connected." in done.text, done.text
        assert parse_qs(urlsplit(opened.headers["location"]).query)["scope"] == ["notes:read"]

        ran, _ = await in_chat(
            as_bob, "run_block", {"block_id": WHOAMI, "input_data": {"run": True}}, chat
        )
        assert ran["type"] == "block_output", ran
        assert ran["outputs"]["result"] == [{"user": "bob"}]
        # Alice has not connected: she gets setup, and never reaches the server.
        needs, _ = await in_chat(
            as_alice, "run_block", {"block_id": ADD, "input_data": {"a": 1, "b": 2}}, ""
        )
        assert needs["type"] == "setup_requirements"
        assert "alice" not in up.seen.users()
        shown = await as_alice.get("/api/v1/sources/notes")
        assert shown.status_code == 200 and shown.json()["auth"] == "oauth"
        text = str(ran) + shown.text + str(needs)
        assert not [t for t in up.tokens_seen if t in text]


# -- the MCP door ------------------------------------------------------------------------------


async def test_mcp_door_setup_connect_run(
    notes: Pilot, upstream: OAuthUpstream, alice: User
) -> None:
    from mcp import Client

    from blockpilot.mcp import build_mcp_server

    async with Client(build_mcp_server(notes, alice.id), mode="legacy") as client:
        needs = await client.call_tool("run_block", {"block_id": ADD, "input_data": {}})
        data = needs.structured_content
        assert data["type"] == "setup_requirements", data
        [entry] = data["setup_info"]["user_readiness"]["missing_credentials"].values()
        assert entry["provider"] == "notes" and entry["setup_url"]
        await connect(notes, upstream, entry["setup_url"], "alice")
        ran = await client.call_tool("run_block", {"block_id": WHOAMI, "input_data": {"run": True}})
        assert ran.structured_content["type"] == "block_output", ran.structured_content
        assert ran.structured_content["outputs"]["result"] == [{"user": "alice"}]
        assert not [t for t in upstream.tokens_seen if t in str(ran.model_dump())]
