"""An imported OpenAPI description, end to end against a local server implementing part of it.

The Petstore description (tests/data/openapi) is imported with ``--base-url`` pointing at a
LocalHTTPServer on loopback that implements a few of its operations; the Google Maps
description the same way for its apiKey-in-the-query scheme. Through the HTTP API: find →
``{}`` → setup requirements with a setup link → the person enters a key on the setup page →
run → output. The key reaches only the API's host, a second user's key is never used for
the first, and a redirect to another host carries no credential.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.sources.base import SourceOptions, source_block_id
from blockpilot.storage.users import User
from blockpilot.testing import LocalHTTPServer, Response

DATA = Path(__file__).parents[1] / "data" / "openapi"
PUBLIC_URL = "http://testserver"  # the clients fixture's base URL (conftest.py)

ALICE_KEY = "alice-petstore-key-4f1c9a7e2b"
BOB_KEY = "bob-petstore-key-9d2e7c1a55"
MAPS_KEY = "AIzaSyFAKE-maps-key-7c1e2d9b0a"
GET_PET = source_block_id("petstore", "getPetById")
INVENTORY = source_block_id("petstore", "getInventory")
FIND_BY_STATUS = source_block_id("petstore", "findPetsByStatus")
ADD_PET = source_block_id("petstore", "addPet")
GET_ORDER = source_block_id("petstore", "getOrderById")
KEYS = {ALICE_KEY: "alice", BOB_KEY: "bob"}


def petstore_server() -> LocalHTTPServer:
    """Part of the Petstore API: pets (apiKey header ``api_key``), inventory, orders."""
    server = LocalHTTPServer()

    def owner(request: Any) -> str | None:
        return KEYS.get(request.header("api_key") or "")

    def get_pet(request: Any, params: dict[str, str]) -> Response:
        who = owner(request)
        if who is None:
            return Response.json({"code": 401, "message": "bad api key"}, status=401)
        if params["petId"] != "7":
            return Response.json({"code": 1, "message": "Pet not found"}, status=404)
        return Response.json({"id": 7, "name": f"{who}'s dog", "photoUrls": [], "status": "sold"})

    def inventory(request: Any, params: dict[str, str]) -> Response:
        if owner(request) is None:
            return Response.json({"message": "bad api key"}, status=401)
        return Response.json({"available": 3, "sold": 1})

    def add_pet(request: Any, params: dict[str, str]) -> Response:
        return Response.json({**request.json(), "id": 99})

    server.add_route("GET", "/api/v3/pet/{petId}", get_pet)
    server.add_route("GET", "/api/v3/store/inventory", inventory)
    server.add_route("POST", "/api/v3/pet", add_pet)
    server.add_route(
        "GET", "/api/v3/store/order/{orderId}", Response.json({"id": 5, "status": "placed"})
    )
    return server


@pytest.fixture
def upstream() -> Iterator[LocalHTTPServer]:
    with petstore_server() as server:
        yield server


@pytest.fixture
def elsewhere() -> Iterator[LocalHTTPServer]:
    """Another origin (another port): where a redirect may try to take the credential."""
    with LocalHTTPServer() as server:
        server.add_route("GET", "/landing", Response.json({"landed": True}))
        yield server


@pytest.fixture
def settings(settings_factory: Any, elsewhere: LocalHTTPServer) -> Settings:
    # No loopback exemption for everyone: only the source's own base URL is allowed (and the
    # "elsewhere" server, so a redirect to it is followed and its requests can be inspected).
    return settings_factory(
        public_url=PUBLIC_URL, http_allowed_hosts=(f"127.0.0.1:{elsewhere.port}",)
    )


@pytest.fixture(autouse=True)
async def petstore(pilot: Pilot, upstream: LocalHTTPServer) -> None:
    """Every test's Pilot has the petstore imported, served by *upstream*."""
    text = (DATA / "petstore3.yaml").read_text(encoding="utf-8")
    result = await pilot.sources.add(
        "openapi", "petstore", text, SourceOptions(base_url=upstream.url("/api/v3"))
    )
    assert result.parsed.blocks == 18


async def tool(client: httpx.AsyncClient, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/api/v1/tools/{name}", json=arguments)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def enter_key_on_setup_page(anon: httpx.AsyncClient, setup_url: str, key: str) -> None:
    path = urlsplit(setup_url).path
    page = await anon.get(path)
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    done = await anon.post(path, data={"csrf": csrf.group(1), "kind": "api_key", "api_key": key})
    assert done.status_code == 200, done.text


async def test_find_setup_connect_run(
    clients: dict[str, Any], upstream: LocalHTTPServer, pilot: Pilot, alice: User
) -> None:
    alice_client, anon = clients["alice"], clients["anon"]
    found = await tool(alice_client, "find_block", {"query": "find pet by ID"})
    assert found["blocks"][0]["id"] == GET_PET
    assert found["blocks"][0]["name"] == "petstore_getPetById"

    details = await tool(alice_client, "run_block", {"block_id": GET_PET, "input_data": {}})
    assert details["type"] == "setup_requirements"
    [entry] = details["setup_info"]["user_readiness"]["missing_credentials"].values()
    assert entry["provider"] == "petstore"
    assert entry["types"] == ["api_key", "oauth2"]
    assert entry["setup_url"].startswith(PUBLIC_URL + "/setup/")
    assert upstream.hits == 0

    await enter_key_on_setup_page(anon, entry["setup_url"], ALICE_KEY)
    [meta] = await pilot.credential_store.list_meta(alice.id)
    assert (meta.provider, meta.type) == ("petstore", "api_key")

    ready = await tool(alice_client, "run_block", {"block_id": GET_PET, "input_data": {}})
    assert ready["type"] == "block_details"
    assert ready["block"]["inputs"]["required"] == ["petId", "credentials"]

    ran = await tool(alice_client, "run_block", {"block_id": GET_PET, "input_data": {"petId": 7}})
    assert ran["type"] == "block_output", ran
    assert ran["outputs"]["status"] == [200]
    assert ran["outputs"]["body"] == [
        {"id": 7, "name": "alice's dog", "photoUrls": [], "status": "sold"}
    ]
    assert ran["outputs"]["headers"][0]["content-type"] == "application/json"
    assert ALICE_KEY not in json.dumps(ran)
    [request] = upstream.requests
    assert request.path == "/api/v3/pet/7"
    assert request.header("api_key") == ALICE_KEY
    assert request.header("authorization") is None


async def test_second_users_credential_is_never_used_for_the_first(
    clients: dict[str, Any], upstream: LocalHTTPServer, pilot: Pilot, alice: User, bob: User
) -> None:
    await pilot.add_credentials(
        bob.id, {"provider": "petstore", "type": "api_key", "api_key": BOB_KEY}
    )
    missing = await tool(clients["alice"], "run_block", {"block_id": INVENTORY, "input_data": {}})
    assert missing["type"] == "setup_requirements"
    # Naming Bob's credential does not make it Alice's.
    [bob_meta] = await pilot.credential_store.list_meta(bob.id)
    stolen = await tool(
        clients["alice"],
        "run_block",
        {"block_id": GET_PET, "input_data": {"petId": 7, "credentials": {"id": bob_meta.id}}},
    )
    assert stolen["type"] == "setup_requirements"
    assert upstream.hits == 0

    await pilot.add_credentials(
        alice.id, {"provider": "petstore", "type": "api_key", "api_key": ALICE_KEY}
    )
    for name, expected in (("alice", ALICE_KEY), ("bob", BOB_KEY)):
        ran = await tool(
            clients[name], "run_block", {"block_id": GET_PET, "input_data": {"petId": 7}}
        )
        assert ran["outputs"]["body"][0]["name"] == f"{name}'s dog"
        assert upstream.last_request is not None
        assert upstream.last_request.header("api_key") == expected


async def test_a_redirect_to_another_host_drops_the_credential(
    clients: dict[str, Any], upstream: LocalHTTPServer, elsewhere: LocalHTTPServer, pilot: Pilot,
    alice: User,
) -> None:  # fmt: skip
    await pilot.add_credentials(
        alice.id, {"provider": "petstore", "type": "api_key", "api_key": ALICE_KEY}
    )
    upstream.queue_response(Response.redirect(elsewhere.url("/landing")))
    ran = await tool(
        clients["alice"], "run_block", {"block_id": INVENTORY, "input_data": {"confirm": True}}
    )
    assert ran["type"] == "block_output", ran
    assert ran["outputs"]["body"] == [{"landed": True}]
    [first] = upstream.requests
    assert first.header("api_key") == ALICE_KEY
    [landed] = elsewhere.requests
    assert landed.header("api_key") is None
    assert ALICE_KEY not in json.dumps(landed.headers) + landed.target


async def test_upstream_errors_are_block_failed_with_status_and_body(
    clients: dict[str, Any], pilot: Pilot, alice: User
) -> None:
    await pilot.add_credentials(
        alice.id, {"provider": "petstore", "type": "api_key", "api_key": ALICE_KEY}
    )
    failed = await tool(
        clients["alice"], "run_block", {"block_id": GET_PET, "input_data": {"petId": 8}}
    )
    assert failed["type"] == "error"
    assert failed["code"] == "block_failed"
    assert "HTTP 404" in failed["message"] and "Pet not found" in failed["message"]


async def test_invalid_inputs_and_dry_run_never_call(
    clients: dict[str, Any], upstream: LocalHTTPServer, pilot: Pilot, alice: User
) -> None:
    await pilot.add_credentials(
        alice.id, {"provider": "petstore", "type": "api_key", "api_key": ALICE_KEY}
    )
    bad = await tool(
        clients["alice"], "run_block", {"block_id": GET_PET, "input_data": {"petId": "seven"}}
    )
    assert bad["type"] == "input_validation_error"
    assert bad["errors"] == {"petId": ["should be of type integer"]}
    dry = await tool(
        clients["alice"],
        "run_block",
        {"block_id": GET_PET, "input_data": {"petId": 7}, "dry_run": True},
    )
    assert dry["type"] == "block_output" and dry["is_dry_run"] is True
    assert upstream.hits == 0


async def test_operations_without_security_need_no_credentials_and_send_json_bodies(
    clients: dict[str, Any], upstream: LocalHTTPServer
) -> None:
    order = await tool(
        clients["alice"], "run_block", {"block_id": GET_ORDER, "input_data": {"orderId": 5}}
    )
    assert order["outputs"]["body"] == [{"id": 5, "status": "placed"}]
    assert upstream.last_request is not None and upstream.last_request.header("api_key") is None


async def test_missing_oauth_scope_yields_setup_requirements_naming_it(
    clients: dict[str, Any], pilot: Pilot, alice: User
) -> None:
    await pilot.add_credentials(
        alice.id,
        {
            "provider": "petstore",
            "type": "oauth2",
            "access_token": "tok-read-only",
            "scopes": ["read:pets"],
        },
    )
    needs = await tool(
        clients["alice"],
        "run_block",
        {"block_id": FIND_BY_STATUS, "input_data": {"status": "sold"}},
    )
    assert needs["type"] == "setup_requirements"
    [entry] = needs["setup_info"]["user_readiness"]["missing_credentials"].values()
    assert entry["types"] == ["oauth2"]
    assert entry["scopes"] == ["read:pets", "write:pets"]


async def test_the_base_url_exemption_belongs_to_the_source_only(
    clients: dict[str, Any], upstream: LocalHTTPServer
) -> None:
    # The built-in web request block cannot reach the loopback API the source may call.
    web_request = "6595ae1f-b924-42cb-9a41-551a0611c4b4"
    blocked = await tool(
        clients["alice"],
        "run_block",
        {
            "block_id": web_request,
            "input_data": {"url": upstream.url("/api/v3/store/order/5"), "method": "GET"},
        },
    )
    assert blocked["type"] == "error", blocked
    assert "blocked" in blocked["message"].lower()
    assert upstream.hits == 0


async def test_api_key_in_the_query_goes_only_to_the_api_and_never_follows_redirects(
    settings: Settings, pilot: Pilot, alice: User, elsewhere: LocalHTTPServer
) -> None:
    with LocalHTTPServer() as maps:
        maps.add_route(
            "GET", "/maps/api/geocode/json",
            Response.json({"status": "OK", "results": [{"formatted_address": "Paris"}]}),
        )  # fmt: skip
        text = (DATA / "google-maps-platform.yaml").read_text(encoding="utf-8")
        await pilot.sources.add("openapi", "gmaps", text, SourceOptions(base_url=maps.url("")))
        await pilot.add_credentials(
            alice.id, {"provider": "gmaps", "type": "api_key", "api_key": MAPS_KEY}
        )
        geocode = source_block_id("gmaps", "geocode")
        call = {"block_id": geocode, "input_data": {"address": "Paris"}}
        ran = await pilot.call_tool("run_block", call, user_id=alice.id)
        assert ran.type == "block_output", ran
        [request] = maps.requests
        assert request.query == {"address": "Paris", "key": MAPS_KEY}

        maps.queue_response(Response.redirect(elsewhere.url("/landing")))
        refused = await pilot.call_tool("run_block", call, user_id=alice.id)
        assert refused.type == "error"
        assert "redirect" in refused.message
        assert elsewhere.hits == 0
        assert MAPS_KEY not in refused.model_dump_json()
