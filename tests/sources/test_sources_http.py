"""``/api/v1/sources``: the same as ``blockpilot sources``, for admin keys only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from blockpilot.settings import Settings

PETSTORE = Path(__file__).parents[1] / "data" / "openapi" / "petstore3.yaml"


@pytest.fixture
def settings(settings_factory: Any) -> Settings:
    return settings_factory(admin_users=("alice",))


async def test_admin_adds_lists_shows_refreshes_and_removes(clients: dict[str, Any]) -> None:
    admin = clients["alice"]
    body = {
        "kind": "openapi",
        "name": "petstore",
        "spec_text": PETSTORE.read_text(encoding="utf-8"),
        "base_url": "https://petstore.example.com/api/v3",
        "include_tags": ["store"],
    }
    added = await admin.post("/api/v1/sources", json=body)
    assert added.status_code == 201, added.text
    assert added.json() == {"name": "petstore", "kind": "openapi", "blocks": 4, "skipped": []}
    again = await admin.post("/api/v1/sources", json=body)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"

    [listed] = (await admin.get("/api/v1/sources")).json()
    assert listed["name"] == "petstore" and listed["blocks"] == 4
    shown = (await admin.get("/api/v1/sources/petstore")).json()
    assert {op["name"] for op in shown["operations"]} == {
        "petstore_getInventory",
        "petstore_placeOrder",
        "petstore_getOrderById",
        "petstore_deleteOrder",
    }
    refreshed = await admin.post("/api/v1/sources/petstore/refresh")
    assert refreshed.status_code == 200 and refreshed.json()["blocks"] == 4

    gone = await admin.delete("/api/v1/sources/petstore")
    assert gone.status_code == 204
    missing = await admin.get("/api/v1/sources/petstore")
    assert missing.status_code == 404


async def test_other_keys_are_refused_and_bad_input_is_typed(clients: dict[str, Any]) -> None:
    for method, path in (
        ("GET", "/api/v1/sources"),
        ("POST", "/api/v1/sources"),
        ("DELETE", "/api/v1/sources/x"),
    ):
        refused = await clients["bob"].request(
            method, path, json={"kind": "openapi", "name": "x", "spec_text": "{}"}
        )
        assert refused.status_code == 403, (method, path)
        assert refused.json()["error"]["code"] == "admin_required"
    admin = clients["alice"]
    bad = await admin.post(
        "/api/v1/sources",
        json={"kind": "openapi", "name": "bad", "spec_text": '{"openapi": "3.0.0", "paths": []}'},
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["path"] == "$.paths"
    no_files = await admin.post(
        "/api/v1/sources", json={"kind": "openapi", "name": "f", "spec_url": str(PETSTORE)}
    )
    assert no_files.status_code == 422
    both = await admin.post("/api/v1/sources", json={"kind": "openapi", "name": "f"})
    assert both.status_code == 422
