"""Helpers for the provider block tests: a pilot pointed at a fake, credentials, assertions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import pytest

from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from blockpilot.testing import LocalHTTPServer, Response
from blockpilot.tools.responses import ToolResponseBase


async def provider_pilot(
    make_pilot: Callable[..., Awaitable[Pilot]],
    monkeypatch: pytest.MonkeyPatch,
    bases: dict[str, str],
    *,
    allowed: Iterable[str] = (),
) -> tuple[Pilot, User, User]:
    """A pilot whose providers' base URLs point at fakes; returns (pilot, alice, bob)."""
    for provider, url in bases.items():
        monkeypatch.setenv(f"BLOCKPILOT_PROVIDER_{provider.upper()}_BASE_URL", url)
    pilot = await make_pilot(http_allowed_hosts=tuple(allowed))
    alice, _ = await pilot.users.create("alice")
    bob, _ = await pilot.users.create("bob")
    return pilot, alice, bob


async def add_key(pilot: Pilot, user: User, provider: str, key: str) -> str:
    meta = await pilot.add_credentials(
        user.id, {"provider": provider, "type": "api_key", "api_key": key}
    )
    return meta.id


async def add_oauth(
    pilot: Pilot, user: User, provider: str, token: str, scopes: Iterable[str]
) -> str:
    meta = await pilot.add_credentials(
        user.id,
        {"provider": provider, "type": "oauth2", "access_token": token, "scopes": list(scopes)},
    )
    return meta.id


async def run(pilot: Pilot, user: User, block_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """Call run_block as the model would; return the response as plain JSON data."""
    response: ToolResponseBase = await pilot.call_tool(
        "run_block", {"block_id": block_id, "input_data": data}, user_id=user.id
    )
    return response.model_dump(mode="json")


def assert_ok(r: dict[str, Any]) -> dict[str, list[Any]]:
    assert r["type"] == "block_output", r
    outputs: dict[str, list[Any]] = r["outputs"]
    return outputs


def assert_failed(r: dict[str, Any], *words: str) -> str:
    assert r["type"] == "error" and r["code"] == "block_failed", r
    message: str = r["message"]
    for word in words:
        assert word in message, (word, message)
    return message


def missing_credentials(r: dict[str, Any]) -> dict[str, Any]:
    """The missing ``credentials`` field of a setup_requirements response."""
    assert r["type"] == "setup_requirements", r
    missing: dict[str, Any] = r["setup_info"]["user_readiness"]["missing_credentials"][
        "credentials"
    ]
    return missing


def elsewhere() -> LocalHTTPServer:
    """Another host: records everything and answers 200 with an empty JSON object."""
    srv = LocalHTTPServer()
    for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
        srv.add_route(method, "/{a}", Response.json({"ok": True}))
        srv.add_route(method, "/{a}/{b}", Response.json({"ok": True}))
        srv.add_route(method, "/{a}/{b}/{c}", Response.json({"ok": True}))
        srv.add_route(method, "/{a}/{b}/{c}/{d}", Response.json({"ok": True}))
    return srv


def redirect_everything(fake: LocalHTTPServer, target: LocalHTTPServer) -> None:
    """The fake's next answers redirect (307, keeping the method) to *target*."""
    fake.queue_response(Response.redirect(target.url("/stolen"), 307), times=20)


def assert_secret_absent(secret: str, *places: Any) -> None:
    for place in places:
        assert secret not in str(place)


def headers_seen(srv: LocalHTTPServer) -> str:
    """Every header value and target a server received, as one string."""
    return " ".join(f"{r.target} {r.headers}" for r in srv.requests)
