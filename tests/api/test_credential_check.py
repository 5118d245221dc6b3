"""POST /api/v1/credentials/{id}/test: a live check against local GitHub/OpenAI/Anthropic."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from blockpilot.api import create_app
from blockpilot.credentials.checks import check_credentials
from blockpilot.credentials.models import APIKeyCredentials
from blockpilot.net.client import GuardedHTTPClient
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.testing import FakeAnthropic, FakeGitHub, FakeOpenAI, Response
from tests.api.api_helpers import assert_error

GITHUB_TOKEN = "ghp_" + "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8"
OPENAI_KEY = "sk-openai-check-0a1b2c3d4e5f6a7b"
ANTHROPIC_KEY = "sk-ant-check-9f8e7d6c5b4a3f2e"
WRONG_KEY = "sk-wrong-key-canary-5e4d3c2b1a09"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(tokens={GITHUB_TOKEN}, login="mona") as server:
        yield server


@pytest.fixture
def openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_keys={OPENAI_KEY}) as server:
        yield server


@pytest.fixture
def anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_keys={ANTHROPIC_KEY}) as server:
        yield server


@dataclass
class Service:
    pilot: Pilot
    alice_id: str
    alice: httpx.AsyncClient
    bob: httpx.AsyncClient

    async def add(self, client: httpx.AsyncClient, credential: dict[str, Any]) -> str:
        response = await client.post("/api/v1/credentials", json=credential)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def check(self, client: httpx.AsyncClient, credential_id: str) -> httpx.Response:
        return await client.post(f"/api/v1/credentials/{credential_id}/test")


@pytest.fixture
async def service(
    settings_factory: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    github: FakeGitHub,
    openai: FakeOpenAI,
    anthropic: FakeAnthropic,
) -> AsyncIterator[Service]:
    # Operator-set API bases: the only loopback destinations the guarded client allows.
    settings = settings_factory()  # clears the BLOCKPILOT_* environment first
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_BASE_URL", github.base_url)
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_OPENAI_BASE_URL", openai.base_url)
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_ANTHROPIC_BASE_URL", anthropic.base_url)
    monkeypatch.setenv("BLOCKPILOT_SYSTEM_OPENAI_API_KEY", "sk-platform-key-0123456789")
    pilot = await Pilot.open(settings)
    alice, alice_key = await pilot.users.create("alice")
    _, bob_key = await pilot.users.create("bob")
    app = create_app(pilot)
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {key}"},
        )
        for key in (alice_key, bob_key)
    ]
    try:
        yield Service(pilot, alice.id, *clients)
    finally:
        for client in clients:
            await client.aclose()
        await pilot.close()


def api_key(provider: str, secret: str) -> dict[str, str]:
    return {"provider": provider, "type": "api_key", "api_key": secret}


async def test_github_token_is_checked_with_get_user(service: Service, github: FakeGitHub) -> None:
    cred = await service.add(service.alice, api_key("github", GITHUB_TOKEN))
    response = await service.check(service.alice, cred)
    assert response.status_code == 200
    assert response.json() == {
        "id": cred,
        "ok": True,
        "status": 200,
        "message": "GitHub accepted the credential",
    }
    [request] = github.requests
    assert (request.method, request.path) == ("GET", "/user")
    assert request.header("authorization") == f"Bearer {GITHUB_TOKEN}"
    assert GITHUB_TOKEN not in response.text


async def test_github_oauth_token_is_checked_too(service: Service, github: FakeGitHub) -> None:
    oauth = {
        "provider": "github",
        "type": "oauth2",
        "access_token": GITHUB_TOKEN,
        "scopes": ["repo"],
        "access_token_expires_at": int(time.time()) + 3600,
    }
    cred = await service.add(service.alice, oauth)
    body = (await service.check(service.alice, cred)).json()
    assert (body["ok"], body["status"]) == (True, 200)
    assert github.tokens_used == [GITHUB_TOKEN]


async def test_refused_github_token_is_ok_false_with_the_status(
    service: Service, github: FakeGitHub
) -> None:
    cred = await service.add(service.alice, api_key("github", "ghp_" + "Z" * 36))
    body = (await service.check(service.alice, cred)).json()
    assert body["ok"] is False and body["status"] == 401
    assert body["message"] == "GitHub rejected the credential (HTTP 401): Bad credentials"


async def test_openai_key_is_checked_with_get_models(service: Service, openai: FakeOpenAI) -> None:
    cred = await service.add(service.alice, api_key("openai", OPENAI_KEY))
    body = (await service.check(service.alice, cred)).json()
    assert (body["ok"], body["status"], body["message"]) == (
        True,
        200,
        "OpenAI accepted the credential",
    )
    [request] = openai.requests
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert request.header("authorization") == f"Bearer {OPENAI_KEY}"


async def test_a_provider_echoing_the_key_never_gets_it_into_the_response(
    service: Service, openai: FakeOpenAI
) -> None:
    # FakeOpenAI's 401 message repeats the whole key, as OpenAI's does.
    cred = await service.add(service.alice, api_key("openai", WRONG_KEY))
    response = await service.check(service.alice, cred)
    body = response.json()
    assert body["ok"] is False and body["status"] == 401
    assert body["message"].startswith("OpenAI rejected the credential (HTTP 401): Incorrect API")
    assert "[REDACTED]" in body["message"]
    assert WRONG_KEY not in response.text and WRONG_KEY[:12] not in response.text


async def test_anthropic_key_is_checked_with_get_v1_models(
    service: Service, anthropic: FakeAnthropic
) -> None:
    good = await service.add(service.alice, api_key("anthropic", ANTHROPIC_KEY))
    body = (await service.check(service.alice, good)).json()
    assert (body["ok"], body["status"]) == (True, 200)
    [request] = anthropic.requests
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert request.header("x-api-key") == ANTHROPIC_KEY
    assert request.header("anthropic-version") == "2023-06-01"
    assert request.header("authorization") is None

    bad = await service.add(service.alice, api_key("anthropic", WRONG_KEY))
    response = await service.check(service.alice, bad)
    assert response.json()["ok"] is False and response.json()["status"] == 401
    assert WRONG_KEY not in response.text


async def test_provider_errors_other_than_auth_are_not_a_confirmation(
    service: Service, openai: FakeOpenAI
) -> None:
    openai.queue_response(Response.json({"error": {"message": "overloaded"}}, status=503))
    cred = await service.add(service.alice, api_key("openai", OPENAI_KEY))
    body = (await service.check(service.alice, cred)).json()
    assert body == {
        "id": cred,
        "ok": False,
        "status": 503,
        "message": "OpenAI answered HTTP 503; the credential could not be confirmed: overloaded",
    }


@pytest.mark.parametrize(
    ("credential", "message"),
    [
        (
            {
                "provider": "smtp",
                "type": "user_password",
                "username": "me",
                "password": "pw-1234",
                "host": "smtp.example.com",
            },
            "No live check for provider smtp",
        ),
        (
            {"provider": "http", "type": "host_scoped", "host": "api.example.com",
             "headers": {"X-Api-Key": "hdr-0123456789"}},
            "No live check for provider http",
        ),
        (
            {"provider": "openai", "type": "host_scoped", "host": "api.openai.com",
             "headers": {"Authorization": "Bearer sk-abcdef0123456789"}},
            "No live check for host_scoped credentials of provider openai",
        ),
    ],
)  # fmt: skip
async def test_providers_without_a_check_answer_ok_null(
    service: Service,
    github: FakeGitHub,
    openai: FakeOpenAI,
    credential: dict[str, Any],
    message: str,
) -> None:
    cred = await service.add(service.alice, credential)
    response = await service.check(service.alice, cred)
    assert response.status_code == 200
    assert response.json() == {"id": cred, "ok": None, "status": None, "message": message}
    assert github.hits == openai.hits == 0


async def test_another_users_credential_is_404_and_not_checked(
    service: Service, openai: FakeOpenAI
) -> None:
    bobs = await service.add(service.bob, api_key("openai", OPENAI_KEY))
    assert_error(await service.check(service.alice, bobs), 404, "credential_not_found")
    assert_error(await service.check(service.alice, "no-such-id"), 404, "credential_not_found")
    # The operator's platform key is usable by runs, but it is not the user's to test.
    [platform] = [m.id for m in await service.pilot.credentials.candidates(service.alice_id)]
    assert_error(await service.check(service.alice, platform), 404, "credential_not_found")
    assert openai.hits == 0
    assert (await service.check(service.bob, bobs)).json()["ok"] is True


async def test_expired_oauth_token_without_an_oauth_app_is_ok_false_without_a_request(
    service: Service, github: FakeGitHub
) -> None:
    expired = {
        "provider": "github",
        "type": "oauth2",
        "access_token": GITHUB_TOKEN,
        "refresh_token": "ghr_refresh_0123456789",
        "access_token_expires_at": int(time.time()) - 60,
    }
    cred = await service.add(service.alice, expired)
    body = (await service.check(service.alice, cred)).json()
    assert body["ok"] is False and body["status"] is None
    assert "expired" in body["message"] and "CLIENT_ID" in body["message"]
    assert github.hits == 0


async def test_unreachable_provider_is_ok_false_without_status(
    service: Service, anthropic: FakeAnthropic
) -> None:
    cred = await service.add(service.alice, api_key("anthropic", ANTHROPIC_KEY))
    anthropic.stop()
    body = (await service.check(service.alice, cred)).json()
    assert body["ok"] is False and body["status"] is None
    assert body["message"].startswith("Could not reach Anthropic: ")
    assert ANTHROPIC_KEY not in body["message"]


async def test_without_an_override_the_blocks_default_api_bases_are_used() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": []})

    async def public_address(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    async with GuardedHTTPClient(
        resolver=public_address, transport=httpx.MockTransport(answer)
    ) as http:
        for provider in ("github", "openai", "anthropic"):
            creds = APIKeyCredentials(provider=provider, api_key=OPENAI_KEY)
            assert (await check_credentials(creds, http, {})).ok is True
    assert [str(r.url) for r in seen] == [
        "https://api.github.com/user",
        "https://api.openai.com/v1/models",
        "https://api.anthropic.com/v1/models",
    ]
