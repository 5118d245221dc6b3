"""An operator's provider base URL is exempt for that provider's blocks only (issue 11 item 3).

``BLOCKPILOT_PROVIDER_OLLAMA_BASE_URL`` points at a private host (here loopback, played by
a canary server). The LLM block reaches it; the generic web request blocks, a redirect from
a public host, the e-mail block (SMTP and its plaintext login) and another provider's
credential check do not.
"""

from __future__ import annotations

from typing import Any

import pytest

from blockpilot.errors import DestinationBlockedError
from blockpilot.net.policy import TrustedDestinations
from blockpilot.pilot import Pilot
from blockpilot.testing import FakeOpenAI
from tests.net.net_servers import redirect
from tests.security.sec_helpers import (
    AUTH_WEB_REQUEST_ID,
    CANARIES,
    EMAIL_ID,
    LLM_ID,
    PUBLIC_IP,
    WEB_REQUEST_ID,
    LocalServer,
    StubResolver,
    guarded_client,
    tool_json,
)


async def _run(pilot: Any, user: Any, block_id: str, input_data: dict[str, Any]) -> dict[str, Any]:
    arguments = {"block_id": block_id, "input_data": input_data}
    return tool_json(await pilot.call_tool("run_block", arguments, user_id=user.id))


def _blocked(result: dict[str, Any]) -> bool:
    return result["type"] == "error" and "blocked" in result["message"].lower()


@pytest.fixture
def ollama(monkeypatch: pytest.MonkeyPatch) -> Any:
    """An OpenAI-compatible server on loopback, configured as the Ollama base URL."""
    key = CANARIES.new("ollama")
    with FakeOpenAI(api_keys={key}) as server:
        server.key = key
        monkeypatch.setenv("BLOCKPILOT_PROVIDER_OLLAMA_BASE_URL", server.base_url)
        yield server


async def test_generic_blocks_do_not_inherit_a_provider_exemption(
    settings_factory: Any, ollama: Any
) -> None:
    # A Pilot as the operator runs it: its own guarded client, the system resolver.
    pilot = await Pilot.open(settings_factory())
    try:
        await _generic_blocks_stay_out(pilot, ollama)
    finally:
        await pilot.close()


async def _generic_blocks_stay_out(pilot: Pilot, ollama: Any) -> None:
    alice, _ = await pilot.users.create("alice")
    await pilot.add_credentials(
        alice.id, {"provider": "ollama", "type": "api_key", "api_key": ollama.key}
    )
    # The provider's own block reaches its private base URL.
    answer = await _run(pilot, alice, LLM_ID, {"prompt": "hi", "model": "llama3"})
    assert answer["type"] == "block_output", answer
    reached = len(ollama.requests)
    assert reached == 1

    target = f"http://127.0.0.1:{ollama.port}/v1/chat/completions"
    for method in ("GET", "POST", "DELETE"):
        result = await _run(pilot, alice, WEB_REQUEST_ID, {"url": target, "method": method})
        assert _blocked(result), result
    # A host-scoped credential for the private host does not help either.
    await pilot.add_credentials(
        alice.id,
        {
            "provider": "http",
            "type": "host_scoped",
            "host": f"127.0.0.1:{ollama.port}",
            "headers": {"X-Token": CANARIES.new("hdr")},
        },
    )
    result = await _run(pilot, alice, AUTH_WEB_REQUEST_ID, {"url": target, "method": "GET"})
    assert _blocked(result), result
    # SMTP to the provider's host (and so no plaintext login there).
    await pilot.add_credentials(
        alice.id,
        {
            "provider": "smtp",
            "type": "user_password",
            "username": "u@example.com",
            "password": CANARIES.new("smtp"),
            "host": f"127.0.0.1:{ollama.port}",
        },
    )
    result = await _run(
        pilot, alice, EMAIL_ID, {"to_email": "b@example.org", "subject": "s", "body": "b"}
    )
    assert _blocked(result), result
    assert len(ollama.requests) == reached


async def test_redirects_into_a_scoped_exemption_are_refused(public: LocalServer) -> None:
    """At the client: a scoped destination is exempt only for chains that start there."""
    with LocalServer() as private:
        trusted = TrustedDestinations({"ollama": private.url("/v1")})
        client, _ = guarded_client(
            StubResolver({"public.example": [PUBLIC_IP]}), {(PUBLIC_IP, 80): public.port}
        )
        try:
            scoped = client.with_exemptions(trusted.for_scopes({"ollama"}))
            assert (await scoped.request("GET", private.url("/ok"))).status_code == 200
            public.route("/hop", redirect(302, private.url("/via-redirect")))
            with pytest.raises(DestinationBlockedError):
                await scoped.request("GET", "http://public.example/hop")
            with pytest.raises(DestinationBlockedError):
                await client.request("GET", private.url("/unscoped"))
            with pytest.raises(DestinationBlockedError):
                await client.with_exemptions(trusted.for_scopes({"openai"})).request(
                    "GET", private.url("/other-scope")
                )
            assert [h.path for h in private.hits] == ["/ok"]
            assert [h.path for h in public.hits] == ["/hop"]
            assert client.policy.scoped_hosts == frozenset()  # the shared client is unchanged
        finally:
            await client.aclose()
