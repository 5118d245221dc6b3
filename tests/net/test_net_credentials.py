"""Credential headers reach only the first origin, whatever the redirects do."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blockpilot.errors import NetworkError
from blockpilot.net import DestinationPolicy, GuardedHTTPClient
from blockpilot.net._transport import PinnedTransport
from tests.net.net_servers import Hit, LocalServer, StubResolver, make_tls, redirect

SECRET = "canary-secret-7f3a"
SENSITIVE = {"X-Api-Key": SECRET, "Authorization": f"Bearer {SECRET}"}
CALLER = {
    "Cookie": f"session={SECRET}",
    "Proxy-Authorization": f"Basic {SECRET}",
    "authorization": "Bearer caller-token",
    "X-Trace": "kept",
}


def _leaks(hit: Hit) -> bool:
    return SECRET in f"{hit.path} {hit.body!r} {hit.headers}" or "caller-token" in str(hit.headers)


def _client(tls_client: object = None) -> GuardedHTTPClient:
    policy = DestinationPolicy.from_host_list(["api.test", "other.test"])
    resolver = StubResolver({"api.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    transport = PinnedTransport(ssl_context=tls_client) if tls_client else None  # type: ignore[arg-type]
    return GuardedHTTPClient(policy, resolver=resolver, transport=transport)


async def _call(client: GuardedHTTPClient, url: str, method: str = "GET") -> None:
    await client.request(method, url, headers=CALLER, sensitive_headers=SENSITIVE, content=b"body")


async def test_origin_receives_the_credential_and_same_origin_redirect_keeps_it(
    server: LocalServer,
) -> None:
    server.route("/start", redirect(302, "/again"))
    async with _client() as client:
        await _call(client, server.url("/start", host="api.test"))
    first, second = server.hits
    for hit in (first, second):
        assert hit.headers["x-api-key"] == SECRET
        assert hit.headers["authorization"] == f"Bearer {SECRET}"  # the credential wins
        assert hit.headers["cookie"] == f"session={SECRET}"
        assert hit.headers["x-trace"] == "kept"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_other_port_gets_no_secrets(
    status: int, server: LocalServer, server2: LocalServer
) -> None:
    server.route("/start", redirect(status, server2.url("/land", host="api.test")))
    async with _client() as client:
        await _call(client, server.url("/start", host="api.test"), method="POST")
    assert server.hits[0].headers["x-api-key"] == SECRET
    (landed,) = server2.hits
    assert not _leaks(landed)
    assert landed.headers["x-trace"] == "kept"
    assert "cookie" not in landed.headers and "proxy-authorization" not in landed.headers


async def test_other_host_same_port_gets_no_secrets(server: LocalServer) -> None:
    server.route("/start", redirect(302, server.url("/land", host="other.test")))
    async with _client() as client:
        await _call(client, server.url("/start", host="api.test"))
    origin, landed = server.hits
    assert origin.headers["host"].startswith("api.test") and _leaks(origin)
    assert landed.headers["host"].startswith("other.test")
    assert not _leaks(landed)


async def test_secrets_stay_dropped_after_returning_to_the_origin(
    server: LocalServer, server2: LocalServer
) -> None:
    server.route("/start", redirect(302, server2.url("/bounce", host="api.test")))
    server2.route("/bounce", redirect(302, server.url("/back", host="api.test")))
    async with _client() as client:
        await _call(client, server.url("/start", host="api.test"))
    assert [hit.path for hit in server.hits] == ["/start", "/back"]
    assert not _leaks(server.hits[1]) and not _leaks(server2.hits[0])


async def test_caller_header_named_like_the_credential_is_dropped_too(
    server: LocalServer, server2: LocalServer
) -> None:
    server.route("/start", redirect(307, server2.url("/land", host="api.test")))
    async with _client() as client:
        await client.request(
            "GET",
            server.url("/start", host="api.test"),
            headers={"x-api-key": "caller-value"},
            sensitive_headers={"X-API-KEY": SECRET},
        )
    assert server.hits[0].headers["x-api-key"] == SECRET
    assert "x-api-key" not in server2.hits[0].headers


@pytest.fixture(scope="module")
def tls() -> tuple[object, object]:
    return make_tls("api.test")


@pytest.fixture
def tls_server(tls: tuple[object, object]) -> Iterator[LocalServer]:
    server = LocalServer(tls=tls[0])  # type: ignore[arg-type]
    yield server
    server.close()


async def test_https_origin_with_pinning_verifies_the_certificate(
    tls: tuple[object, object], tls_server: LocalServer
) -> None:
    tls_server.route("/start", redirect(302, "/again"))
    async with _client(tls[1]) as client:
        response = await client.request(
            "GET", tls_server.url("/start", host="api.test"), sensitive_headers=SENSITIVE
        )
        assert response.url == tls_server.url("/again", host="api.test")
        # Same address, but the certificate does not name other.test.
        with pytest.raises(NetworkError, match="TLS certificate verification failed"):
            await client.request("GET", tls_server.url("/", host="other.test"))
    assert [hit.headers["x-api-key"] for hit in tls_server.hits] == [SECRET, SECRET]


async def test_https_to_http_downgrade_drops_secrets(
    tls: tuple[object, object], tls_server: LocalServer, server: LocalServer
) -> None:
    tls_server.route("/start", redirect(302, server.url("/plain", host="api.test")))
    async with _client(tls[1]) as client:
        await _call(client, tls_server.url("/start", host="api.test"))
    assert tls_server.hits[0].headers["x-api-key"] == SECRET
    assert not _leaks(server.hits[0])
