"""Bearer API keys: 401 for missing, malformed, unknown and revoked keys; probes need none."""

from __future__ import annotations

import httpx
import pytest

from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from tests.api.api_helpers import ClientFactory, assert_error


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token bp_abc",
        "Bearer two words",
        "Bearer " + "k" * 300,
        "Bearer bp_not-a-real-key",
    ],
)
async def test_bad_or_missing_keys_get_401_with_bearer_challenge(
    anon: httpx.AsyncClient, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    for method, path in [("GET", "/api/v1/credentials"), ("POST", "/api/v1/tools/find_block")]:
        response = await anon.request(method, path, headers=headers, json={"query": "x"})
        assert_error(response, 401, "auth_required")
        assert response.headers["www-authenticate"] == "Bearer"


async def test_revoked_key_stops_working_at_once(
    pilot: Pilot, alice: User, client_for: ClientFactory
) -> None:
    key = await pilot.users.create_api_key(alice.id)
    client = client_for(key)
    assert (await client.get("/api/v1/sessions")).status_code == 200
    assert await pilot.users.revoke_api_key(key)
    error = assert_error(await client.get("/api/v1/sessions"), 401, "auth_required")
    assert "revoked" in str(error["message"])


async def test_scheme_is_case_insensitive(client_for: ClientFactory, alice_key: str) -> None:
    client = client_for()
    response = await client.get(
        "/api/v1/sessions", headers={"Authorization": f"bearer {alice_key}"}
    )
    assert response.status_code == 200


async def test_probes_need_no_key(anon: httpx.AsyncClient) -> None:
    assert (await anon.get("/healthz")).json() == {"status": "ok"}
    ready = await anon.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok"}}
