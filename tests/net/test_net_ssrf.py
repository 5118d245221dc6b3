"""SSRF payloads against real loopback servers: refused, and the canary never hit."""

from __future__ import annotations

import httpcore
import pytest

from blockpilot.errors import DestinationBlockedError, NetworkError
from blockpilot.net import DestinationPolicy, GuardedHTTPClient
from blockpilot.net._transport import Pin, PinnedNetworkBackend, PinnedTransport, pinned
from blockpilot.net.client import system_resolver
from tests.net.net_servers import FakeInternet, LocalServer, StubResolver, redirect

PUBLIC = "93.184.215.14"

LOOPBACK_PAYLOADS = [
    "http://127.0.0.1:{p}/",
    "http://127.1:{p}/",
    "http://127.0.1:{p}/",
    "http://2130706433:{p}/",
    "http://0x7f000001:{p}/",
    "http://0x7f.1:{p}/",
    "http://0x7F.0.0.1:{p}/",
    "http://0177.0.0.1:{p}/",
    "http://0177.1:{p}/",
    "http://0.0.0.0:{p}/",
    "http://0:{p}/",
    "http://[::1]:{p}/",
    "http://[::]:{p}/",
    "http://[::ffff:127.0.0.1]:{p}/",
    "http://[::ffff:7f00:1]:{p}/",
    "http://[64:ff9b::7f00:1]:{p}/",
    "http://[2002:7f00:1::]:{p}/",
    "http://[fe80::1%25eth0]:{p}/",
    "http://localhost:{p}/",
    "http://localhost.:{p}/",
    "http://LOCALHOST:{p}/",
    "http://LocalHost.:{p}/x?y#z",
    "http://anything.localhost:{p}/",
    "https://127.0.0.1:{p}/",
    "http://127.0.0.1.:{p}/",
    "http://user:pass@127.0.0.1:{p}/",
    "http://example.com@127.0.0.1:{p}/",
    "http://example.com:80@127.0.0.1:{p}/",
    "http://evil.example\\@127.0.0.1:{p}/",
    "http://@127.0.0.1:{p}/",
    "http://１２７.０.０.１:{p}/",
    "http://127.0.0.1\t:{p}/",
    "http://127.0.0.1:{p}\n/",
    "http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ:{p}/",
]

OTHER_INTERNAL = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://100.64.0.1/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.0.1/",
    "http://198.18.0.1/",
    "http://[fc00::1]/",
    "http://[fe80::1]/",
    "http://[ff02::1]/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
]


def _client(policy: DestinationPolicy | None = None, **answers: list[str]) -> GuardedHTTPClient:
    return GuardedHTTPClient(policy, resolver=StubResolver(dict(answers)))


@pytest.mark.parametrize("template", LOOPBACK_PAYLOADS)
async def test_loopback_payloads_never_reach_the_canary(template: str, canary: LocalServer) -> None:
    async with _client() as client:
        with pytest.raises(DestinationBlockedError) as info:
            await client.request("GET", template.format(p=canary.port))
    assert canary.hits == []
    assert info.value.code == "destination_blocked"
    assert info.value.details.keys() == {"host", "reason"}


@pytest.mark.parametrize("url", OTHER_INTERNAL)
async def test_other_internal_ranges_are_blocked(url: str) -> None:
    async with _client() as client:
        with pytest.raises(DestinationBlockedError, match="Requests to internal networks"):
            await client.request("GET", url)


def test_blocked_message_shape() -> None:
    from blockpilot.net.urls import blocked_address

    error = blocked_address("internal.test", "loopback")
    assert error.message == (
        "Destination blocked: internal.test resolves to a private or reserved address "
        "(loopback). Requests to internal networks are not allowed."
    )
    assert error.details == {"host": "internal.test", "reason": "loopback"}


@pytest.mark.parametrize(
    "answer",
    [
        ["127.0.0.1"],
        ["::1"],
        ["10.1.2.3"],
        ["169.254.169.254"],
        ["fe80::1%lo"],
        ["::ffff:127.0.0.1"],
        [PUBLIC, "127.0.0.1"],
        ["127.0.0.1", PUBLIC],
    ],
)
async def test_names_resolving_to_internal_addresses_are_blocked(
    answer: list[str], canary: LocalServer
) -> None:
    backend = FakeInternet()
    client = GuardedHTTPClient(
        resolver=StubResolver({"internal.test": answer}),
        transport=PinnedTransport(network_backend=backend),
    )
    async with client:
        with pytest.raises(DestinationBlockedError) as info:
            await client.request("GET", f"http://internal.test:{canary.port}/")
    assert info.value.details["host"] == "internal.test"
    assert backend.connects == [] and canary.hits == []


async def test_metadata_hostname_is_blocked_by_address() -> None:
    async with _client(**{"metadata.google.internal": ["169.254.169.254"]}) as client:
        with pytest.raises(DestinationBlockedError, match=r"\(link-local/metadata\)"):
            await client.request("GET", "http://metadata.google.internal/computeMetadata/v1/")


async def test_fragment_cannot_smuggle_a_host(canary: LocalServer) -> None:
    # The real host is example.com; "@127.0.0.1" is only the fragment.
    async with _client(**{"example.com": ["192.0.2.10"]}) as client:
        with pytest.raises(DestinationBlockedError) as info:
            await client.request("GET", f"http://example.com#@127.0.0.1:{canary.port}/")
    assert info.value.details["host"] == "example.com"
    assert canary.hits == []


@pytest.mark.parametrize(
    "template",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:{p}/_GET%20/",
        "ftp://127.0.0.1:{p}/",
        "dict://127.0.0.1:{p}/info",
        "data:text/plain,hello",
        "ws://127.0.0.1:{p}/",
        "HTTPX://127.0.0.1:{p}/",
        "javascript:alert(1)",
    ],
)
async def test_non_http_schemes_are_blocked(template: str, canary: LocalServer) -> None:
    policy = DestinationPolicy.from_host_list([f"127.0.0.1:{canary.port}"])
    async with _client(policy) as client:
        with pytest.raises(DestinationBlockedError, match="only http and https"):
            await client.request("GET", template.format(p=canary.port))
    assert canary.hits == []


async def test_exemption_is_for_the_exact_host_and_port(
    server: LocalServer, canary: LocalServer
) -> None:
    policy = DestinationPolicy.from_host_list([f"127.0.0.1:{server.port}"])
    async with _client(policy) as client:
        response = await client.request("GET", server.url("/hello"))
        assert (response.status_code, response.content) == (200, b"ok")
        for url in (canary.url(), server.url(host="localhost"), server.url(host="[::1]")):
            with pytest.raises(DestinationBlockedError):
                await client.request("GET", url)
    assert len(server.hits) == 1 and canary.hits == []


async def test_exemption_without_port_covers_every_port(
    server: LocalServer, canary: LocalServer
) -> None:
    policy = DestinationPolicy.from_host_list(["127.0.0.1"])
    async with _client(policy) as client:
        await client.request("GET", server.url())
        await client.request("GET", canary.url())
    assert len(server.hits) == len(canary.hits) == 1


async def test_exempt_name_still_connects_only_to_resolved_address(server: LocalServer) -> None:
    policy = DestinationPolicy.from_host_list([f"svc.test:{server.port}"])
    resolver = StubResolver({"svc.test": ["127.0.0.1"]})
    async with GuardedHTTPClient(policy, resolver=resolver) as client:
        response = await client.request("GET", server.url("/x", host="svc.test"))
    assert response.status_code == 200
    assert server.hits[0].headers["host"] == f"svc.test:{server.port}"
    assert resolver.calls == [("svc.test", server.port)]


async def test_dns_rebinding_uses_the_checked_address(
    server: LocalServer, canary: LocalServer
) -> None:
    # First answer public, second loopback: the connection must go to the first.
    resolver = StubResolver({"rebind.test": [[PUBLIC], ["127.0.0.1"]]})
    backend = FakeInternet({(PUBLIC, canary.port): server.port})
    client = GuardedHTTPClient(
        resolver=resolver, transport=PinnedTransport(network_backend=backend)
    )
    async with client:
        response = await client.request("GET", f"http://rebind.test:{canary.port}/")
        assert response.status_code == 200
        assert backend.connects == [(PUBLIC, canary.port)]
        assert resolver.calls == [("rebind.test", canary.port)]
        # The next request resolves again, sees loopback and is refused.
        with pytest.raises(DestinationBlockedError):
            await client.request("GET", f"http://rebind.test:{canary.port}/")
    assert canary.hits == []
    assert [hit.headers["host"] for hit in server.hits] == [f"rebind.test:{canary.port}"]


async def test_rebinding_between_redirect_hops_is_caught(
    server: LocalServer, canary: LocalServer
) -> None:
    resolver = StubResolver({"rebind.test": [[PUBLIC], ["127.0.0.1"]]})
    backend = FakeInternet({(PUBLIC, canary.port): server.port})
    server.route("/go", redirect(302, f"http://rebind.test:{canary.port}/again"))
    client = GuardedHTTPClient(
        resolver=resolver, transport=PinnedTransport(network_backend=backend)
    )
    async with client:
        with pytest.raises(DestinationBlockedError):
            await client.request("GET", f"http://rebind.test:{canary.port}/go")
    assert len(resolver.calls) == 2
    assert canary.hits == [] and [hit.path for hit in server.hits] == ["/go"]


async def test_backend_refuses_connections_without_a_pin() -> None:
    backend = PinnedNetworkBackend(FakeInternet())
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_tcp("127.0.0.1", 9)
    with pinned(Pin("other.test", 80, ("127.0.0.1",))), pytest.raises(httpcore.ConnectError):
        await backend.connect_tcp("svc.test", 80)
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_unix_socket("/var/run/docker.sock")


async def test_pinned_backend_tries_every_vetted_address(server: LocalServer) -> None:
    inner = FakeInternet()
    backend = PinnedNetworkBackend(inner)
    with pinned(Pin("dual.test", server.port, ("2001:4860::1", "127.0.0.1"))):
        stream = await backend.connect_tcp("dual.test", server.port)
    await stream.aclose()
    assert inner.connects == [("2001:4860::1", server.port), ("127.0.0.1", server.port)]


async def test_unresolvable_host_is_a_network_error() -> None:
    async with _client() as client:
        with pytest.raises(NetworkError, match="Could not resolve host nowhere.test") as info:
            await client.request("GET", "http://nowhere.test/")
    assert not isinstance(info.value, DestinationBlockedError)


async def test_system_resolver_returns_addresses() -> None:
    addresses = await system_resolver("127.0.0.1", 80)
    assert addresses == ["127.0.0.1"]


async def test_idna_host_matches_its_exemption(server: LocalServer) -> None:
    policy = DestinationPolicy.from_host_list([f"bücher.test:{server.port}"])
    resolver = StubResolver({"xn--bcher-kva.test": ["127.0.0.1"]})
    async with GuardedHTTPClient(policy, resolver=resolver) as client:
        response = await client.request("GET", f"http://BÜCHER.test:{server.port}/")
    assert response.status_code == 200
    assert server.hits[0].headers["host"] == f"xn--bcher-kva.test:{server.port}"


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "0x7f.1", "[::1]", "LOCALHOST.", "internal.test", "mixed.test"]
)
async def test_checked_address_blocks_internal_hosts(host: str) -> None:
    answers = {"internal.test": ["10.0.0.1"], "mixed.test": [PUBLIC, "::1"]}
    async with _client(**answers) as client:
        with pytest.raises(DestinationBlockedError):
            await client.checked_address(host, 25)


@pytest.mark.parametrize("host", ["", "mail.test/x", "user@mail.test", "*.test", "a b"])
async def test_checked_address_rejects_malformed_hosts(host: str) -> None:
    async with _client() as client:
        with pytest.raises(DestinationBlockedError, match="not a valid host"):
            await client.checked_address(host, 25)


async def test_checked_address_returns_the_vetted_address() -> None:
    resolver = StubResolver({"mail.test": [[PUBLIC], ["127.0.0.1"]], "relay.test": ["127.0.0.1"]})
    policy = DestinationPolicy.from_host_list(["relay.test:2525"])
    async with GuardedHTTPClient(policy, resolver=resolver) as client:
        assert await client.checked_address("Mail.Test", 587) == PUBLIC
        assert await client.checked_address("relay.test", 2525) == "127.0.0.1"
        with pytest.raises(DestinationBlockedError):
            await client.checked_address("relay.test", 25)  # exempt on port 2525 only
        with pytest.raises(DestinationBlockedError):
            await client.checked_address("mail.test", 587)  # the next answer rebinds
