"""Policy rules for one API key: they narrow only that key's calls, through HTTP and MCP, and
that key cannot lift them (docs/approvals.md)."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from tests.api.api_helpers import ClientFactory, assert_error

STORE_VALUE = "1ff065e9-88e8-4358-9d82-8dc91f622ba9"  # StoreValueBlock, effect read
CANARY = "canary-policy-key-7d1f"


async def _run(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/tools/run_block",
        json={"block_id": STORE_VALUE, "input_data": {"input": CANARY}},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _key_id(pilot: Pilot, key: str) -> str:
    owner = await pilot.users.owner_of_api_key(key)
    assert owner is not None
    return owner.api_key_id


async def test_a_rule_for_one_key_narrows_only_that_key(
    pilot: Pilot,
    alice: User,
    alice_key: str,
    bob_key: str,
    client_for: ClientFactory,
) -> None:
    agent_key = await pilot.users.create_api_key(alice.id)
    as_agent, as_alice, as_bob = client_for(agent_key), client_for(alice_key), client_for(bob_key)

    # The agent's key narrows itself: no reads with this key.
    added = await as_agent.post(
        "/api/v1/policy/rules",
        json={"effect": "read", "decision": "deny", "api_key_id": "current"},
    )
    assert added.status_code == 201, added.text
    rule = added.json()
    assert rule["api_key_id"] == await _key_id(pilot, agent_key)
    assert rule["rule"] == "API key rule: deny effect=read"
    assert agent_key not in added.text  # the rule names the key by id, never the key itself

    denied = await _run(as_agent)
    assert denied["code"] == "policy_denied", denied
    assert "API key rule: deny effect=read" in denied["message"]
    # Alice's other key, Bob, and the library (no key) are not narrowed by it.
    assert (await _run(as_alice))["type"] == "block_output"
    assert (await _run(as_bob))["type"] == "block_output"
    direct = await pilot.call_tool(
        "run_block",
        {"block_id": STORE_VALUE, "input_data": {"input": CANARY}},
        user_id=alice.id,
    )
    assert direct.type == "block_output"
    # Only the denied call left no execution: Alice has two (her key and the library).
    assert len(await pilot.executions.list(alice.id)) == 2

    # The narrowed key cannot lift or loosen its own rule; another key of Alice's can.
    assert_error(await as_agent.delete(f"/api/v1/policy/rules/{rule['id']}"), 403, "policy_locked")
    loosened = await as_agent.post(
        "/api/v1/policy/rules",
        json={"effect": "read", "decision": "allow", "api_key_id": "current"},
    )
    assert_error(loosened, 403, "policy_locked")
    assert (await _run(as_agent))["code"] == "policy_denied"
    assert_error(await as_bob.delete(f"/api/v1/policy/rules/{rule['id']}"), 404)
    assert (await as_alice.delete(f"/api/v1/policy/rules/{rule['id']}")).status_code == 204
    assert (await _run(as_agent))["type"] == "block_output"


async def test_a_rule_names_only_the_users_own_active_keys(
    pilot: Pilot, alice: User, alice_key: str, bob_key: str, client_for: ClientFactory
) -> None:
    as_alice = client_for(alice_key)
    bobs_key_id = await _key_id(pilot, bob_key)
    for named in (bobs_key_id, "bp_nothing", bob_key[:10]):
        response = await as_alice.post(
            "/api/v1/policy/rules",
            json={"effect": "read", "decision": "deny", "api_key_id": named},
        )
        assert_error(response, 404, "not_found")
    # By the prefix `blockpilot keys list` shows.
    response = await as_alice.post(
        "/api/v1/policy/rules",
        json={"effect": "read", "decision": "ask", "api_key_id": alice_key[:10]},
    )
    assert response.status_code == 201, response.text
    assert response.json()["api_key_id"] == await _key_id(pilot, alice_key)
    revoked = await pilot.users.create_api_key(alice.id)
    assert await pilot.users.revoke_api_key(revoked)
    response = await as_alice.post(
        "/api/v1/policy/rules",
        json={"effect": "read", "decision": "ask", "api_key_id": revoked[:10]},
    )
    assert_error(response, 404, "not_found")
    # The policy document lists the rule with its key id; no key appears in it.
    document = (await as_alice.get("/api/v1/policy")).text
    assert alice_key not in document and bob_key not in document


async def test_the_mcp_door_applies_the_rules_of_its_key(
    base_url: str, pilot: Pilot, alice: User, alice_key: str, client_for: ClientFactory
) -> None:
    agent_key = await pilot.users.create_api_key(alice.id)
    response = await client_for(alice_key).post(
        "/api/v1/policy/rules",
        json={"effect": "read", "decision": "deny", "api_key_id": agent_key[:10]},
    )
    assert response.status_code == 201, response.text

    async def run_over_mcp(key: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {key}"}
        with anyio.fail_after(20):
            async with (
                create_mcp_http_client(headers=headers) as http,
                Client(streamable_http_client(f"{base_url}/mcp", http_client=http)) as client,
            ):
                result = await client.call_tool(
                    "run_block", {"block_id": STORE_VALUE, "input_data": {"input": CANARY}}
                )
        assert result.structured_content is not None
        return result.structured_content

    assert (await run_over_mcp(agent_key))["code"] == "policy_denied"
    assert (await run_over_mcp(alice_key))["type"] == "block_output"
