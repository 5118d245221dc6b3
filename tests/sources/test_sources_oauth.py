"""An imported description's oauth2 scheme becomes the source's OAuth provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from blockpilot.api import create_app
from blockpilot.pilot import Pilot
from blockpilot.sources.base import SourceOptions, source_block_id
from blockpilot.storage.users import User

DATA = Path(__file__).parents[1] / "data" / "openapi"


@pytest.fixture
async def box(pilot: Pilot) -> Pilot:
    text = (DATA / "box.json").read_text(encoding="utf-8")
    await pilot.sources.add("openapi", "box", text, SourceOptions(include_tags=("Files",)))
    return pilot


async def test_no_client_id_no_provider(box: Pilot) -> None:
    assert box.oauth_provider("box") is None


async def test_endpoints_from_the_description_and_the_app_from_settings(
    box: Pilot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_BOX_CLIENT_ID", "box-client")
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_BOX_CLIENT_SECRET", "box-secret-canary-71c2")
    provider = box.oauth_provider("box")
    assert provider is not None
    assert provider.authorize_url == "https://account.box.com/api/oauth2/authorize"
    assert provider.token_url == "https://api.box.com/oauth2/token"
    assert provider.client_id == "box-client"
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_BOX_TOKEN_URL", "https://auth.example.com/token")
    overridden = box.oauth_provider("box")
    assert overridden is not None and overridden.token_url == "https://auth.example.com/token"


async def test_setup_requirements_then_login_link_for_the_source(
    box: Pilot, alice: User, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_BOX_CLIENT_ID", "box-client")
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_BOX_CLIENT_SECRET", "box-secret-canary-71c2")
    get_file = source_block_id("box", "get_files_id")
    needs = await box.call_tool(
        "run_block", {"block_id": get_file, "input_data": {}}, user_id=alice.id
    )
    assert needs.type == "setup_requirements"
    [entry] = needs.setup_info.user_readiness.missing_credentials.values()
    assert (entry["provider"], entry["types"]) == ("box", ["oauth2"])

    key = await box.users.create_api_key(alice.id)
    app = create_app(box)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}"},
    ) as client:
        login = await client.get("/api/v1/integrations/box/login")
        assert login.status_code == 200, login.text
        start = login.json()["login_url"]
        opened = await client.get(urlsplit(start).path + "?" + urlsplit(start).query)
        assert opened.status_code in (302, 303, 307), opened.text
        target = urlsplit(opened.headers["location"])
        assert (target.scheme, target.netloc, target.path) == (
            "https",
            "account.box.com",
            "/api/oauth2/authorize",
        )
        query = parse_qs(target.query)
        assert query["client_id"] == ["box-client"]
        assert "box-secret-canary-71c2" not in opened.headers["location"]
