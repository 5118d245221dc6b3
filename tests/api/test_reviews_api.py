"""Policies, reviews, the approval page and Idempotency-Key over HTTP (docs/approvals.md)."""

from __future__ import annotations

import asyncio
import html
import json
import re
from typing import Any

import httpx
import pytest

from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.storage.users import User
from tests.api.api_helpers import ClientFactory, assert_error

STORE_VALUE = "1ff065e9-88e8-4358-9d82-8dc91f622ba9"  # StoreValueBlock, effect read
XSS = '<script>alert("x")</script> & <b>bold</b>'


@pytest.fixture
def pilot_settings(settings: Settings) -> Settings:
    """Answers carry approval links to the app's pages, as under ``blockpilot serve``."""
    return settings.model_copy(update={"public_url": "http://127.0.0.1:8000"})


async def _run(client: httpx.AsyncClient, value: Any, **headers: str) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/tools/run_block",
        json={"block_id": STORE_VALUE, "input_data": {"input": value}},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _ask_for_reads(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/policy/rules", json={"effect": "read", "decision": "ask"})
    assert response.status_code == 201, response.text
    assert response.json()["rule"] == "user rule: ask effect=read"


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


async def test_policy_rules_round_trip_and_refuse_bad_input(as_alice: httpx.AsyncClient) -> None:
    await _ask_for_reads(as_alice)
    policy = (await as_alice.get("/api/v1/policy")).json()
    assert [r["rule"] for r in policy["operator"]] == ["operator rule: ask effect=destructive"]
    [mine] = policy["user"]
    assert_error(
        await as_alice.post("/api/v1/policy/rules", json={"decision": "ask"}), 422, "invalid_input"
    )
    assert_error(
        await as_alice.post("/api/v1/policy/rules", json={"decision": "maybe", "effect": "read"}),
        422,
    )
    assert (await as_alice.delete(f"/api/v1/policy/rules/{mine['id']}")).status_code == 204
    assert_error(await as_alice.delete(f"/api/v1/policy/rules/{mine['id']}"), 404)


async def test_review_flow_over_http_and_the_approval_page(
    as_alice: httpx.AsyncClient, as_bob: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await _ask_for_reads(as_alice)
    answer = await _run(as_alice, XSS)
    assert answer["type"] == "review_required"
    review_id, url = answer["review_id"], answer["approval_url"]
    assert url.startswith("http://127.0.0.1:8000/reviews/")
    path = url.removeprefix("http://127.0.0.1:8000")

    # Bob cannot see or decide Alice's review.
    assert_error(await as_bob.get(f"/api/v1/reviews/{review_id}"), 404)
    assert_error(await as_bob.post(f"/api/v1/reviews/{review_id}/approve"), 404)
    assert (await as_bob.get("/api/v1/reviews")).json()["reviews"] == []

    # The page shows the inputs exactly, as text, never as markup.
    page = await anon.get(path)
    assert page.status_code == 200
    shown = re.search(r'<pre id="inputs">(.*?)</pre>', page.text, re.S)
    assert shown and json.loads(html.unescape(shown.group(1))) == {"input": XSS}
    assert "<script>" not in page.text and "<b>" not in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")

    # A forged or missing anti-CSRF field decides nothing.
    forged = await anon.post(path, data={"decision": "approve", "csrf": "AAAA"})
    assert forged.status_code == 403
    assert (await as_alice.get(f"/api/v1/reviews/{review_id}")).json()["status"] == "pending"

    approved = await anon.post(path, data={"decision": "approve", "csrf": _csrf(page.text)})
    assert approved.status_code == 200 and "Approved" in approved.text
    ran = await _run(as_alice, XSS)
    assert ran["type"] == "block_output" and ran["outputs"] == {"output": [XSS]}
    listed = (await as_alice.get("/api/v1/reviews")).json()["reviews"]
    assert [(r["status"], r["execution_id"]) for r in listed] == [("used", ran["execution_id"])]

    # The link is single-use: shown, never decided again.
    again = await anon.post(path, data={"decision": "reject", "csrf": _csrf(page.text)})
    assert again.status_code == 409 and "has run" in again.text
    assert 'name="decision"' not in again.text


async def test_reject_over_the_api_tells_the_model_why(as_alice: httpx.AsyncClient) -> None:
    await _ask_for_reads(as_alice)
    answer = await _run(as_alice, "x")
    rejected = await as_alice.post(
        f"/api/v1/reviews/{answer['review_id']}/reject", json={"reason": "wrong account"}
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert_error(await as_alice.post(f"/api/v1/reviews/{answer['review_id']}/approve"), 409)
    told = await _run(as_alice, "x")
    assert told["code"] == "review_rejected" and "wrong account" in told["message"]


async def test_a_tampered_or_foreign_link_is_refused(
    as_alice: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await _ask_for_reads(as_alice)
    answer = await _run(as_alice, "x")
    path = answer["approval_url"].removeprefix("http://127.0.0.1:8000")
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert (await anon.get(tampered)).status_code == 404
    assert (await anon.get("/reviews/not-a-token")).status_code == 404


async def test_idempotency_key_header_replays_the_first_result(
    pilot: Pilot, alice: User, as_alice: httpx.AsyncClient
) -> None:
    first = await _run(as_alice, "v", **{"Idempotency-Key": "order-17"})
    second = await _run(as_alice, "v", **{"Idempotency-Key": "order-17"})
    assert second["execution_id"] == first["execution_id"] and second["replayed"] is True
    assert len(await pilot.executions.list(alice.id)) == 1
    conflict = await _run(as_alice, "w", **{"Idempotency-Key": "order-17"})
    assert conflict["code"] == "idempotency_conflict"
    both = await as_alice.post(
        "/api/v1/tools/run_block",
        json={"block_id": STORE_VALUE, "input_data": {"input": "v"}, "idempotency_key": "other"},
        headers={"Idempotency-Key": "order-17"},
    )
    assert_error(both, 422, "invalid_input")


async def test_reviews_need_an_api_key(anon: httpx.AsyncClient, client_for: ClientFactory) -> None:
    assert_error(await anon.get("/api/v1/reviews"), 401)
    assert_error(await anon.get("/api/v1/policy"), 401)


async def test_a_stale_link_is_refused(
    app: Any, pilot: Pilot, alice: User, anon: httpx.AsyncClient
) -> None:
    review = await pilot.reviews.create(
        user_id=alice.id,
        session_id="s",
        block_id=STORE_VALUE,
        block_name="StoreValueBlock",
        effect="read",
        digest="0" * 64,
        input_data={"input": "x"},
        credential_ids=[],
        rule="user rule: ask effect=read",
        ttl_seconds=1,
    )
    path = pilot.review_links.url(review).removeprefix("http://127.0.0.1:8000")
    await asyncio.sleep(1.2)
    page = await anon.get(path)
    assert page.status_code == 410 and "expired" in page.text
    assert not await pilot.reviews.decide(alice.id, review.id, approve=True, by="t", reason=None)
