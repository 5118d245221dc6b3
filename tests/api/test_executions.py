"""Executions over HTTP: each user reads only their own."""

from __future__ import annotations

import httpx

from tests.api.api_helpers import assert_error

CALCULATOR = "b1ab9b19-67a6-406d-abf5-2dba76d00c79"


async def test_executions_are_listed_newest_first_and_private(
    as_alice: httpx.AsyncClient, as_bob: httpx.AsyncClient
) -> None:
    ids = []
    for a in (1, 2):
        arguments = {"block_id": CALCULATOR, "input_data": {"operation": "add", "a": a, "b": 1}}
        ids.append(
            (await as_alice.post("/api/v1/tools/run_block", json=arguments)).json()["execution_id"]
        )
    listed = (await as_alice.get("/api/v1/executions")).json()["executions"]
    assert [e["id"] for e in listed] == ids[::-1]
    assert listed[0]["input"] == {"operation": "add", "a": 2, "b": 1}
    assert "user_id" not in listed[0]
    assert [
        e["id"]
        for e in (
            await as_alice.get("/api/v1/executions", params={"limit": 1, "offset": 1})
        ).json()["executions"]
    ] == ids[:1]

    assert (await as_bob.get("/api/v1/executions")).json() == {"executions": []}
    for execution_id in ids:
        assert_error(
            await as_bob.get(f"/api/v1/executions/{execution_id}"), 404, "execution_not_found"
        )


async def test_unknown_execution_and_bad_paging(as_alice: httpx.AsyncClient) -> None:
    assert_error(await as_alice.get("/api/v1/executions/nope"), 404, "execution_not_found")
    assert_error(
        await as_alice.get("/api/v1/executions", params={"limit": 0}), 422, "invalid_request"
    )
    assert_error(
        await as_alice.get("/api/v1/executions", params={"limit": "many"}), 422, "invalid_request"
    )
