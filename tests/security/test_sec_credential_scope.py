"""Credentials go to their own origin only (docs/security.md), through the blocks.

A host-scoped credential, a GitHub token, an LLM key and the live credential check are
each pointed at a server that redirects (every redirect status) to another scheme, host or
port; what the other servers receive is searched for every form of every canary. The host
matcher is checked against look-alike hosts (suffix/prefix tricks, IDNA homographs,
downgrades, other ports) both directly and through ``run_block``.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from blockpilot.api import create_app
from blockpilot.credentials.hosts import HostPattern
from blockpilot.net import DestinationPolicy, GuardedHTTPClient
from blockpilot.net._transport import PinnedTransport
from blockpilot.net.urls import normalise_host
from blockpilot.pilot import Pilot
from tests.net.net_servers import Hit, LocalServer, StubResolver, make_tls, redirect, reply
from tests.security.sec_helpers import (
    AUTH_WEB_REQUEST_ID,
    CANARIES,
    GITHUB_ISSUE_ID,
    LLM_ID,
    guard_pilot,
    leak_forms,
    tool_json,
)

LOOKALIKE_HOSTS = [
    "api.test.evil",
    "evilapi.test",
    "api.testevil",
    "xapi.test",
    "api-test",
    "api.test.",  # the same host (trailing dot) — must still match, see below
    "apі.test",  # Cyrillic і
    "аpi.test",  # Cyrillic а
    "api.tеst",  # Cyrillic е
]
ALL_NAMES = [
    "api.test",
    "other.test",
    "api.test.evil",
    "evilapi.test",
    "api.testevil",
    "xapi.test",
    "api-test",
    "sub.api.test",
]


@pytest.fixture(scope="module")
def tls() -> tuple[Any, Any]:
    return make_tls("api.test")


@pytest.fixture
def servers(tls: tuple[Any, Any]) -> Iterator[dict[str, LocalServer]]:
    server_tls, _ = tls
    made = {
        "origin": LocalServer(tls=server_tls),  # https://api.test:P
        "origin_other_port": LocalServer(tls=server_tls),  # https://api.test:P2
        "plain": LocalServer(),  # http://<any name>:P3
    }
    yield made
    for server in made.values():
        server.close()


def _names() -> list[str]:
    names = set(ALL_NAMES)
    for host in LOOKALIKE_HOSTS:
        with contextlib.suppress(ValueError):
            names.add(normalise_host(host))
    return sorted(names)


async def _scope_pilot(open_pilot: Any, tls: tuple[Any, Any], **overrides: Any) -> Pilot:
    pilot = await open_pilot(**overrides)
    names = _names()
    client = GuardedHTTPClient(
        DestinationPolicy.from_host_list(names),  # local test servers: exempt from the SSRF guard
        resolver=StubResolver({name: ["127.0.0.1"] for name in names}),
        transport=PinnedTransport(ssl_context=tls[1]),
    )
    await guard_pilot(pilot, client)
    return pilot


def _leaked(hit: Hit, canaries: list[str]) -> list[str]:
    seen = f"{hit.method} {hit.path} {hit.headers!r} {hit.body!r}"
    return [form for canary in canaries for form in leak_forms(canary) if form in seen]


def _header_sets() -> list[tuple[str, dict[str, str], list[str]]]:
    key, bearer, cookie, basic_pw, custom = (
        CANARIES.new(n) for n in ("key", "bear", "cook", "basic", "cust")
    )
    basic = base64.b64encode(f"svc:{basic_pw}".encode()).decode()
    return [
        (
            "x-api-key, bearer, cookie",
            {"X-Api-Key": key, "Authorization": f"Bearer {bearer}", "Cookie": f"sid={cookie}"},
            [key, bearer, cookie],
        ),
        (
            "basic auth and a custom header",
            {"Authorization": f"Basic {basic}", "X-Custom-Token": custom},
            [basic, custom],
        ),
    ]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_host_scoped_headers_never_follow_a_redirect_to_another_origin(
    status: int, open_pilot: Any, tls: tuple[Any, Any], servers: dict[str, LocalServer]
) -> None:
    pilot = await _scope_pilot(open_pilot, tls)
    user, _ = await pilot.users.create("alice")
    origin, other_port, plain = servers["origin"], servers["origin_other_port"], servers["plain"]
    targets = {
        "other port, same scheme": f"https://api.test:{other_port.port}/land",
        "downgrade to http, other port": f"http://api.test:{plain.port}/land",
        "other host": f"http://other.test:{plain.port}/land",
        "suffix trick": f"http://api.test.evil:{plain.port}/land",
        "prefix trick": f"http://evilapi.test:{plain.port}/land",
        "sub-domain": f"http://sub.api.test:{plain.port}/land",
    }
    for label, headers, canaries in _header_sets():
        meta = await pilot.add_credentials(
            user.id,
            {
                "provider": "http",
                "type": "host_scoped",
                "host": f"https://api.test:{origin.port}",
                "headers": headers,
            },
        )
        for name, target in targets.items():
            origin.hits.clear()
            other_port.hits.clear()
            plain.hits.clear()
            origin.route("/start", redirect(status, target))
            data = tool_json(
                await pilot.call_tool(
                    "run_block",
                    {
                        "block_id": AUTH_WEB_REQUEST_ID,
                        "input_data": {
                            "url": f"https://api.test:{origin.port}/start",
                            "method": "POST",
                            "body": {"note": "hello"},
                            # the model adds its own Authorization too: the stored one wins at the
                            # origin, and neither goes anywhere else
                            "headers": {
                                "Authorization": "Bearer model-made-0123456789",
                                "X-Trace": "t",
                            },
                            "credentials": {
                                "id": meta.id,
                                "provider": "http",
                                "type": "host_scoped",
                            },
                        },
                    },
                    user_id=user.id,
                )
            )
            assert data["type"] == "block_output", (label, name, data)
            [first] = origin.hits
            for canary_header, value in headers.items():
                assert first.headers[canary_header.lower()] == value  # the origin got it
            landed = other_port.hits + plain.hits
            assert len(landed) == 1, (label, name)
            assert _leaked(landed[0], canaries) == [], (label, name, landed[0].headers)
            assert "authorization" not in landed[0].headers and "cookie" not in landed[0].headers
            assert landed[0].headers.get("x-trace") == "t"


async def test_a_hop_back_to_the_origin_does_not_rearm_the_credential(
    open_pilot: Any, tls: tuple[Any, Any], servers: dict[str, LocalServer]
) -> None:
    pilot = await _scope_pilot(open_pilot, tls)
    user, _ = await pilot.users.create("alice")
    origin, plain = servers["origin"], servers["plain"]
    secret = CANARIES.new("rearm")
    meta = await pilot.add_credentials(
        user.id,
        {
            "provider": "http",
            "type": "host_scoped",
            "host": f"api.test:{origin.port}",
            "headers": {"X-Api-Key": secret},
        },
    )
    origin.route("/a", redirect(302, "/b"))  # same origin: keeps it
    origin.route("/b", redirect(302, f"http://other.test:{plain.port}/c"))
    plain.route("/c", redirect(302, f"https://api.test:{origin.port}/d"))  # attacker sends it back
    data = tool_json(
        await pilot.call_tool(
            "run_block",
            {
                "block_id": AUTH_WEB_REQUEST_ID,
                "input_data": {
                    "url": f"https://api.test:{origin.port}/a",
                    "method": "GET",
                    "credentials": {"id": meta.id, "provider": "http", "type": "host_scoped"},
                },
            },
            user_id=user.id,
        )
    )
    assert data["type"] == "block_output", data
    assert [h.path for h in origin.hits] == ["/a", "/b", "/d"]
    assert [h.headers.get("x-api-key") for h in origin.hits] == [secret, secret, None]
    assert _leaked(plain.hits[0], [secret]) == []


async def test_github_token_stays_on_the_api_host_through_redirects(
    open_pilot: Any,
    tls: tuple[Any, Any],
    servers: dict[str, LocalServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    origin, plain = servers["origin"], servers["plain"]
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_BASE_URL", f"https://api.test:{origin.port}")
    pilot = await _scope_pilot(open_pilot, tls)
    user, _ = await pilot.users.create("alice")
    token = CANARIES.new("ghp_")
    await pilot.add_credentials(
        user.id, {"provider": "github", "type": "api_key", "api_key": token}
    )
    for status in (301, 302, 303, 307, 308):
        origin.hits.clear()
        plain.hits.clear()
        origin.route(
            "/repos/o/r/issues/1", redirect(status, f"http://evil.test:{plain.port}/steal")
        )
        plain.route("/steal", reply(200, b'{"title": "t", "body": "b", "user": {"login": "u"}}'))
        data = tool_json(
            await pilot.call_tool(
                "run_block",
                {
                    "block_id": GITHUB_ISSUE_ID,
                    "input_data": {
                        "issue_url": f"https://api.test:{origin.port}/repos/o/r/issues/1"
                    },
                },
                user_id=user.id,
            )
        )
        # evil.test is not exempt: it resolves nowhere the stub knows, so the hop fails; with a
        # name that resolves, the hop goes out without the token (next assertion).
        assert data["type"] in ("error", "block_output")
        assert origin.hits[0].headers["authorization"] == f"Bearer {token}"
        assert all(_leaked(hit, [token]) == [] for hit in plain.hits)
        origin.route(
            "/repos/o/r/issues/1", redirect(status, f"http://other.test:{plain.port}/steal")
        )
        data = tool_json(
            await pilot.call_tool(
                "run_block",
                {
                    "block_id": GITHUB_ISSUE_ID,
                    "input_data": {
                        "issue_url": f"https://api.test:{origin.port}/repos/o/r/issues/1"
                    },
                },
                user_id=user.id,
            )
        )
        assert data["type"] == "block_output", data
        assert plain.hits and all(_leaked(hit, [token]) == [] for hit in plain.hits)


async def test_llm_key_and_credential_check_stay_on_the_provider_host(
    open_pilot: Any,
    tls: tuple[Any, Any],
    servers: dict[str, LocalServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    origin, plain = servers["origin"], servers["plain"]
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_OPENAI_BASE_URL", f"https://api.test:{origin.port}/v1")
    pilot = await _scope_pilot(open_pilot, tls)
    user, key = await pilot.users.create("alice")
    secret = CANARIES.new("sk-")
    meta = await pilot.add_credentials(
        user.id, {"provider": "openai", "type": "api_key", "api_key": secret}
    )
    origin.route(
        "/v1/chat/completions", redirect(307, f"http://other.test:{plain.port}/v1/chat/completions")
    )
    origin.route("/v1/models", redirect(302, f"http://other.test:{plain.port}/v1/models"))
    tool_json(
        await pilot.call_tool(
            "run_block",
            {"block_id": LLM_ID, "input_data": {"prompt": "hi", "model": "gpt-4o-mini"}},
            user_id=user.id,
        )
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(pilot)),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}"},
    ) as client:
        checked = await client.post(f"/api/v1/credentials/{meta.id}/test")
    CANARIES.saw("credential check", checked.text)
    assert checked.status_code == 200
    assert {h.path for h in origin.hits} == {"/v1/chat/completions", "/v1/models"}
    assert all(h.headers["authorization"] == f"Bearer {secret}" for h in origin.hits)
    assert plain.hits, "the redirects were followed"
    assert all(_leaked(hit, [secret]) == [] for hit in plain.hits)


# --------------------------------------------------------------------------- the matcher


LOOKALIKE_CASES = [
    ("api.test", "https://api.test.evil/"),
    ("api.test", "https://evilapi.test/"),
    ("api.test", "https://api.testevil/"),
    ("api.test", "https://xapi.test/"),
    ("api.test", "https://api.test@evil.test/"),
    ("api.test", "https://evil.test#@api.test"),
    ("api.test", "https://evil.test/?@api.test"),
    ("api.test", "https://evil.test\\@api.test/"),
    ("api.test", "https://evil.test\\.api.test/"),
    ("api.test", "https://apі.test/"),  # Cyrillic і
    ("api.test", "https://аpi.test/"),  # Cyrillic а
    ("api.test", "https://api.tеst/"),  # Cyrillic е
    ("api.test", "https://api.test:8443/"),
    ("api.test", "https://api.test:1/"),
    ("api.test", "http://api.test/"),  # a bare host means its https site: no plain http
    ("api.test", "http://api.test:80/"),
    ("api.test", "ws://api.test/"),
    ("https://api.test", "http://api.test/"),
    ("https://api.test", "http://api.test:443/"),
    ("https://api.test:8443", "https://api.test/"),
    ("https://api.test:8443", "http://api.test:8443/"),
    ("api.test:8443", "https://api.test:9443/"),
    ("*.api.test", "https://api.test.evil/"),
    ("*.api.test", "https://xapi.test/"),
    ("*.api.test", "https://evil.test/.api.test"),
    ("*.api.test", "http://sub.api.test/"),
    ("exаmple.com", "https://example.com/"),  # a Cyrillic pattern is not the Latin host
    ("example.com", "https://exаmple.com/"),
    ("example.com", "https://ｅｘａｍｐｌｅ.com/"),
    ("example.com", "https://example.com%2e/"),
    ("example.com", "https://example.com%00.evil/"),
    ("example.com", "https://EXAMPLE.COM.evil/"),
]


@pytest.mark.parametrize(("pattern", "url"), LOOKALIKE_CASES)
def test_matcher_rejects_lookalikes_and_downgrades(pattern: str, url: str) -> None:
    assert not HostPattern.parse(pattern).matches_url(url)


@pytest.mark.parametrize(
    ("pattern", "url"),
    [
        ("api.test", "https://api.test/x"),
        ("api.test", "https://API.TEST./x"),
        ("*.api.test", "https://a.b.api.test/"),
        ("http://api.test", "http://api.test/"),
        (
            "api.test:8080",
            "http://api.test:8080/",
        ),  # a pattern naming a port takes its scheme from the URL
        ("bücher.test", "https://xn--bcher-kva.test/"),
    ],
)
def test_matcher_still_accepts_its_own_host(pattern: str, url: str) -> None:
    assert HostPattern.parse(pattern).matches_url(url)


async def test_lookalike_urls_never_receive_the_credential_through_run_block(
    open_pilot: Any, tls: tuple[Any, Any], servers: dict[str, LocalServer]
) -> None:
    pilot = await _scope_pilot(open_pilot, tls)
    user, _ = await pilot.users.create("alice")
    plain = servers["plain"]
    secret = CANARIES.new("look")
    meta = await pilot.add_credentials(
        user.id,
        {
            "provider": "http",
            "type": "host_scoped",
            "host": "api.test",
            "headers": {"X-Api-Key": secret},
        },
    )
    urls = [f"http://{host}:{plain.port}/" for host in LOOKALIKE_HOSTS if host != "api.test."]
    urls += [
        f"http://api.test:{plain.port}/",
        "http://api.test/",
        f"https://api.test:{plain.port}/",
    ]
    for url in urls:
        for credentials in (
            None,
            {"id": meta.id, "provider": "http", "type": "host_scoped"},
            meta.id,
        ):
            data: dict[str, Any] = {"url": url, "method": "GET"}
            if credentials is not None:
                data["credentials"] = credentials
            outcome = tool_json(
                await pilot.call_tool(
                    "run_block",
                    {"block_id": AUTH_WEB_REQUEST_ID, "input_data": data},
                    user_id=user.id,
                )
            )
            # Not for this URL: the credential is "missing" and nothing is sent.
            assert outcome["type"] == "setup_requirements", (url, outcome)
    assert plain.hits == []
