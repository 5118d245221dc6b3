"""HubSpot CRM blocks against FakeHubSpot over real sockets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from blockpilot.blocks.library import hubspot as h
from blockpilot.testing import FakeHubSpot

from .lib_provider_helpers import (
    add_key,
    add_oauth,
    assert_failed,
    assert_ok,
    headers_seen,
    missing_credentials,
    provider_pilot,
    redirect_everything,
    run,
)

TOKEN = "pat-na1-" + "Canary0000-1111-2222-3333-444455556666"


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    with FakeHubSpot({TOKEN}) as srv:
        srv.add_object("contacts", email="ann@acme.com", firstname="Ann", lastname="Lee")
        srv.add_object("contacts", email="bob@beta.io", firstname="Bob", company="Beta")
        srv.add_object("companies", name="Acme Corp", domain="acme.com", city="Berlin")
        yield srv


@pytest.fixture
async def env(make_pilot, monkeypatch, hubspot, other):
    allowed = [f"127.0.0.1:{other.port}"]
    return await provider_pilot(
        make_pilot, monkeypatch, {"hubspot": hubspot.base_url}, allowed=allowed
    )


Check = Callable[[dict[str, list[Any]], FakeHubSpot], bool]
CASES: dict[type, tuple[dict[str, Any], str, Check]] = {
    h.HubSpotSearchContactsBlock: (
        {"query": "beta"},
        "crm.objects.contacts.read",
        lambda out, srv: (
            [c["email"] for c in out["contacts"][0]] == ["bob@beta.io"] and out["total"] == [1]
        ),
    ),
    h.HubSpotGetContactBlock: (
        {"contact": "ann@acme.com"},
        "crm.objects.contacts.read",
        lambda out, srv: out["contact"][0]["firstname"] == "Ann",
    ),
    h.HubSpotCreateContactBlock: (
        {"email": "cy@gamma.dev", "firstname": "Cy"},
        "crm.objects.contacts.write",
        lambda out, srv: (
            srv.objects["contacts"][out["contact_id"][0]]["properties"]
            == {"email": "cy@gamma.dev", "firstname": "Cy"}
        ),
    ),
    h.HubSpotSearchCompaniesBlock: (
        {"query": "acme"},
        "crm.objects.companies.read",
        lambda out, srv: out["companies"][0][0]["city"] == "Berlin",
    ),
    h.HubSpotGetCompanyBlock: (
        {"company": "acme.com"},
        "crm.objects.companies.read",
        lambda out, srv: out["company"][0]["name"] == "Acme Corp",
    ),
    h.HubSpotCreateCompanyBlock: (
        {"name": "Delta", "domain": "delta.io"},
        "crm.objects.companies.write",
        lambda out, srv: out["company"][0]["domain"] == "delta.io",
    ),
}
BLOCKS = list(CASES)
IDS = [b.__name__ for b in BLOCKS]


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_block_works_with_a_private_app_token(env, hubspot, block) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "hubspot", TOKEN)
    data, _, check = CASES[block]
    out = assert_ok(await run(pilot, alice, block.id, data))
    assert check(out, hubspot), out
    assert all(r.header("authorization") == f"Bearer {TOKEN}" for r in hubspot.requests)


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_missing_credential_asks_for_the_scope(env, hubspot, block) -> None:
    pilot, alice, bob = env
    data, scope, _ = CASES[block]
    await add_oauth(pilot, bob, "hubspot", TOKEN, ["oauth"])
    for user in (alice, bob):
        missing = missing_credentials(await run(pilot, user, block.id, data))
        assert missing["provider"] == "hubspot" and missing["scopes"] == [scope]
    assert hubspot.hits == 0


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_upstream_errors_are_typed(env, hubspot, block) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "hubspot", TOKEN)
    data = CASES[block][0]
    hubspot.fail_next(500, "internal error")
    assert_failed(await run(pilot, alice, block.id, data), "HubSpot API returned HTTP 500")
    hubspot.rate_limit_next(retry_after=10)
    assert_failed(await run(pilot, alice, block.id, data), "HubSpot rate limit", "10 seconds")
    hubspot.revoke_token(TOKEN)
    assert_failed(await run(pilot, alice, block.id, data), "HTTP 401", "reconnect")


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_token_never_reaches_another_host(env, hubspot, other, block) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "hubspot", TOKEN)
    redirect_everything(hubspot, other)
    await run(pilot, alice, block.id, CASES[block][0])
    assert TOKEN not in headers_seen(other)


async def test_search_pages_conflicts_and_missing(env, hubspot) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "hubspot", TOKEN)
    for i in range(130):
        hubspot.add_object("contacts", email=f"p{i}@bulk.com")
    hubspot.reset()
    data = {"query": "bulk", "limit": 110}
    out = assert_ok(await run(pilot, alice, h.HubSpotSearchContactsBlock.id, data))
    assert len(out["contacts"][0]) == 110 and out["total"] == [130]
    assert [r.json().get("after") for r in hubspot.requests] == [None, "100"]
    dup = {"email": "ann@acme.com"}
    assert_failed(await run(pilot, alice, h.HubSpotCreateContactBlock.id, dup), "HTTP 409")
    gone = {"contact": "424242"}
    assert_failed(await run(pilot, alice, h.HubSpotGetContactBlock.id, gone), "HTTP 404")
    odd = {"contact": "../../crm/v3/objects/companies/1"}
    assert_failed(await run(pilot, alice, h.HubSpotGetContactBlock.id, odd), "HTTP 404")
    assert all("/companies" not in r.path for r in hubspot.requests)
