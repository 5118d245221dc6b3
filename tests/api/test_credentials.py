"""Credentials over HTTP: metadata only, secrets never echoed, each user sees only their own."""

from __future__ import annotations

import httpx
import pytest

from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from tests.api.api_helpers import assert_error

CANARY = "sk-canary-5f3e9a0d7c2b4e61a8f0"


def openai_key(secret: str = CANARY) -> dict[str, str]:
    return {"provider": "openai", "type": "api_key", "api_key": secret, "title": "work key"}


async def test_add_returns_201_metadata_without_the_secret(as_alice: httpx.AsyncClient) -> None:
    response = await as_alice.post("/api/v1/credentials", json=openai_key())
    assert response.status_code == 201
    meta = response.json()
    assert CANARY not in response.text
    assert {
        "id": meta["id"],
        "provider": "openai",
        "type": "api_key",
        "title": "work key",
    }.items() <= meta.items()
    assert response.headers["location"] == f"/api/v1/credentials/{meta['id']}"
    listed = await as_alice.get("/api/v1/credentials")
    assert [c["id"] for c in listed.json()["credentials"]] == [meta["id"]]
    assert CANARY not in listed.text


async def test_default_flag_is_a_query_parameter(as_alice: httpx.AsyncClient) -> None:
    response = await as_alice.post(
        "/api/v1/credentials", params={"default": "true"}, json=openai_key()
    )
    assert response.json()["is_default"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"provider": "openai", "type": "api_key"},
        {"provider": "openai", "type": "api_key", "api_key": CANARY, "extra": CANARY},
        {"provider": "Not Valid!", "type": "api_key", "api_key": CANARY},
        {"provider": "openai", "type": "magic", "api_key": CANARY},
        {"provider": "smtp", "type": "user_password", "username": CANARY, "password": 5},
        {
            "provider": "x",
            "type": "host_scoped",
            "host": "../not-a-host",
            "headers": {"X-Key": CANARY},
        },
    ],
)
async def test_invalid_credentials_are_422_without_echoing_values(
    as_alice: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await as_alice.post("/api/v1/credentials", json=body)
    assert_error(response, 422, "invalid_input")
    assert CANARY not in response.text
    assert (await as_alice.get("/api/v1/credentials")).json() == {"credentials": []}


async def test_users_see_and_delete_only_their_own(
    pilot: Pilot, alice: User, as_alice: httpx.AsyncClient, as_bob: httpx.AsyncClient
) -> None:
    alice_cred = (await as_alice.post("/api/v1/credentials", json=openai_key())).json()["id"]
    bob_cred = (
        await as_bob.post("/api/v1/credentials", json=openai_key("sk-bob-0123456789abcdef"))
    ).json()["id"]

    assert [c["id"] for c in (await as_bob.get("/api/v1/credentials")).json()["credentials"]] == [
        bob_cred
    ]
    assert_error(
        await as_bob.delete(f"/api/v1/credentials/{alice_cred}"), 404, "credential_not_found"
    )
    assert [c.id for c in await pilot.credential_store.list_meta(alice.id)] == [alice_cred]

    assert (await as_alice.delete(f"/api/v1/credentials/{alice_cred}")).status_code == 204
    assert (await as_alice.get("/api/v1/credentials")).json() == {"credentials": []}
    assert_error(
        await as_alice.delete(f"/api/v1/credentials/{alice_cred}"), 404, "credential_not_found"
    )
    assert [c["id"] for c in (await as_bob.get("/api/v1/credentials")).json()["credentials"]] == [
        bob_cred
    ]


async def test_a_stored_secret_never_appears_in_any_response(as_alice: httpx.AsyncClient) -> None:
    await as_alice.post("/api/v1/credentials", json=openai_key())
    found = await as_alice.post(
        "/api/v1/tools/find_block", json={"query": "call a large language model"}
    )
    llm = found.json()["blocks"][0]["id"]
    responses = [
        await as_alice.get("/api/v1/credentials"),
        await as_alice.post("/api/v1/tools/run_block", json={"block_id": llm, "input_data": {}}),
        await as_alice.post(
            "/api/v1/tools/run_block",
            json={"block_id": llm, "input_data": {"prompt": "hi"}, "dry_run": True},
        ),
        await as_alice.get("/api/v1/executions"),
    ]
    for response in responses:
        assert response.status_code == 200
        assert CANARY not in response.text
