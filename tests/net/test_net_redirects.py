"""Manual redirect following: every hop re-validated, bounded, browser method rules."""

from __future__ import annotations

import pytest

from blockpilot.errors import DestinationBlockedError, NetworkError
from blockpilot.net import DestinationPolicy, GuardedHTTPClient
from tests.net.net_servers import LocalServer, StubResolver, redirect, reply

STATUSES = [301, 302, 303, 307, 308]
# Location forms that all land on the (non-exempt) canary port.
TARGETS = [
    "http://127.0.0.1:{p}/hit",
    "//127.0.0.1:{p}/hit",
    "http://localhost:{p}/hit",
    "http://[::ffff:127.0.0.1]:{p}/hit",
    "http://2130706433:{p}/hit",
    "http://user:pw@127.0.0.1:{p}/hit",
    "http://svc.test:{p}/hit",
]


def _client(server: LocalServer, **limits: object) -> GuardedHTTPClient:
    # svc.test resolves to loopback but only the exact server port is exempt.
    policy = DestinationPolicy.from_host_list([f"127.0.0.1:{server.port}"], **limits)
    return GuardedHTTPClient(policy, resolver=StubResolver({"svc.test": ["127.0.0.1"]}))


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("target", TARGETS)
async def test_redirect_to_internal_port_is_blocked(
    status: int, target: str, server: LocalServer, canary: LocalServer
) -> None:
    server.route("/start", redirect(status, target.format(p=canary.port)))
    async with _client(server) as client:
        with pytest.raises(DestinationBlockedError):
            await client.request("POST", server.url("/start"), content=b"body")
    assert canary.hits == []
    assert [hit.path for hit in server.hits] == ["/start"]


@pytest.mark.parametrize("location", ["file:///etc/passwd", "gopher://127.0.0.1/"])
async def test_redirect_to_other_scheme_is_blocked(location: str, server: LocalServer) -> None:
    server.route("/start", redirect(302, location))
    async with _client(server) as client:
        with pytest.raises(DestinationBlockedError, match="only http and https"):
            await client.request("GET", server.url("/start"))


async def test_redirect_to_malformed_url_fails(server: LocalServer) -> None:
    server.route("/start", redirect(302, "http://[::1"))
    async with _client(server) as client:
        with pytest.raises(NetworkError, match="invalid HTTP response"):
            await client.request("GET", server.url("/start"))


@pytest.mark.parametrize(
    ("status", "method", "expected_method", "keeps_body"),
    [
        (301, "GET", "GET", True),
        (301, "POST", "GET", False),
        (302, "POST", "GET", False),
        (302, "PUT", "PUT", True),
        (303, "POST", "GET", False),
        (303, "PUT", "GET", False),
        (303, "HEAD", "HEAD", False),
        (307, "POST", "POST", True),
        (308, "POST", "POST", True),
        (308, "PATCH", "PATCH", True),
    ],
)
@pytest.mark.parametrize("location", ["/final", "final", "{base}/final"])
async def test_allowed_redirects_follow_method_rules(
    status: int,
    method: str,
    expected_method: str,
    keeps_body: bool,
    location: str,
    server: LocalServer,
) -> None:
    server.route("/start", redirect(status, location.format(base=server.url(""))))
    server.route("/final", reply(200, b"done"))
    body = b"payload" if method != "HEAD" else None
    async with _client(server) as client:
        response = await client.request(
            method, server.url("/start?q=1"), content=body, headers={"content-type": "x/y"}
        )
    assert response.status_code == 200
    assert response.url == server.url("/final")
    assert response.redirects == [server.url("/start?q=1")]
    final = server.hits[-1]
    assert (final.path, final.method) == ("/final", expected_method)
    if keeps_body:
        assert final.body == b"payload" and final.headers["content-type"] == "x/y"
    else:
        assert final.body == b""
    if expected_method != method:
        assert "content-type" not in final.headers


async def test_redirect_chain_over_the_limit(server: LocalServer) -> None:
    server.route("/loop", redirect(302, "/loop"))
    async with _client(server) as client:
        with pytest.raises(NetworkError, match=r"^Too many redirects \(max 5\)$"):
            await client.request("GET", server.url("/loop"))
    assert len(server.hits) == 6


async def test_redirect_chain_at_the_limit_succeeds(server: LocalServer) -> None:
    for step in range(5, 0, -1):
        server.route(f"/c{step}", redirect(307, f"/c{step - 1}"))
    server.route("/c0", reply(200, b"end"))
    async with _client(server) as client:
        response = await client.request("GET", server.url("/c5"))
    assert response.content == b"end"
    assert len(response.redirects) == 5


async def test_policy_max_redirects_zero(server: LocalServer) -> None:
    server.route("/start", redirect(302, "/final"))
    async with _client(server, max_redirects=0) as client:
        with pytest.raises(NetworkError, match=r"max 0"):
            await client.request("GET", server.url("/start"))


async def test_redirect_status_without_location_is_returned(server: LocalServer) -> None:
    server.route("/nolocation", reply(302, b"no location"))
    server.route("/notmodified", reply(300, b"choices", {"Location": "/x"}))
    async with _client(server) as client:
        first = await client.request("GET", server.url("/nolocation"))
        second = await client.request("GET", server.url("/notmodified"))
    assert (first.status_code, first.content) == (302, b"no location")
    assert (second.status_code, second.redirects) == (300, [])


async def test_fragment_is_not_sent(server: LocalServer) -> None:
    async with _client(server) as client:
        response = await client.request("GET", server.url("/p?a=1#frag@127.0.0.1"))
    assert server.hits[0].path == "/p?a=1"
    assert response.url == server.url("/p?a=1")
