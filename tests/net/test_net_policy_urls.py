"""DestinationPolicy parsing/exemptions and the URL/host parsing helpers."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from blockpilot.errors import ConfigurationError, DestinationBlockedError
from blockpilot.net import DestinationPolicy
from blockpilot.net.urls import parse_destination, parse_legacy_ipv4

SCHEMES = frozenset({"http", "https"})


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("Example.COM", ("example.com", None)),
        ("api.example.com.", ("api.example.com", None)),
        ("api.example.com:8443", ("api.example.com", 8443)),
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("[::1]:8080", ("::1", 8080)),
        ("[::1]", ("::1", None)),
        ("::1", ("::1", None)),
        ("[::FFFF:127.0.0.1]:80", ("::ffff:7f00:1", 80)),
        ("bücher.de", ("xn--bcher-kva.de", None)),
        ("straße.de", ("xn--strae-oqa.de", None)),
        ("under_score.test", ("under_score.test", None)),
        ("  spaced.example:81 ", ("spaced.example", 81)),
    ],
)
def test_host_list_entries(entry: str, expected: tuple[str, int | None]) -> None:
    policy = DestinationPolicy.from_host_list([entry])
    assert policy.allowed_hosts == frozenset({expected})


@pytest.mark.parametrize(
    "entry",
    [
        "",
        " ",
        "host:",
        "host:0",
        "host:65536",
        "host:http",
        "[::1",
        "[::1]x",
        "a b",
        "http://host",
        "user@host",
        "host/path",
        ".",
        "*.example.com",
        "a..b",
        "ⓛ​.test",
    ],
)
def test_bad_entries_raise_configuration_error(entry: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        DestinationPolicy.from_host_list(["fine.example", entry])
    assert repr(entry) in info.value.message


def test_limits_pass_through_and_defaults() -> None:
    policy = DestinationPolicy.from_host_list([], max_redirects=2)
    assert policy.max_redirects == 2
    default = DestinationPolicy()
    assert default.allowed_schemes == {"http", "https"}
    assert (default.max_redirects, default.max_response_bytes) == (5, 10 * 1024 * 1024)
    assert default.timeout_seconds == 30.0


def test_is_exempt_matches_exact_host_and_port() -> None:
    policy = DestinationPolicy.from_host_list(["127.0.0.1:8080", "any-port.test"])
    assert policy.is_exempt("127.0.0.1", 8080)
    assert not policy.is_exempt("127.0.0.1", 8081)
    assert not policy.is_exempt("localhost", 8080)
    assert policy.is_exempt("ANY-PORT.test.", 1)
    assert policy.is_exempt("any-port.test", 65535)
    assert not policy.is_exempt("sub.any-port.test", 80)
    assert not policy.is_exempt("any-port.test.evil", 80)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0177.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("10.0x10.0.1", "10.16.0.1"),
        ("169.254.43518", "169.254.169.254"),
        ("4294967295", "255.255.255.255"),
    ],
)
def test_legacy_ipv4_forms(text: str, expected: str) -> None:
    assert parse_legacy_ipv4(text) == IPv4Address(expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "4294967296",
        "256.0.0.1",
        "1.2.3.4.5",
        "08.0.0.1",
        "0x1g",
        "1..2",
        "a.b",
        "1.2.3.4 x",
        "example.com",
        "127.0.0.1.nip.io",
        "1.256.1",
        "1" * 5000,
        "0x" + "f" * 5000,
    ],
)
def test_not_legacy_ipv4(text: str) -> None:
    assert parse_legacy_ipv4(text) is None


def test_parse_destination_normalises() -> None:
    dest = parse_destination("HTTP://Example.COM./a?b=1#frag", SCHEMES)
    assert (dest.scheme, dest.host, dest.port) == ("http", "example.com", 80)
    assert str(dest.url) == "http://example.com./a?b=1"
    assert dest.ip is None
    dest = parse_destination("https://0x7f.1/", SCHEMES)
    assert (dest.host, dest.port, dest.ip) == ("127.0.0.1", 443, IPv4Address("127.0.0.1"))
    assert dest.wire_host == "0x7f.1"
    assert parse_destination("http://" + "1" * 5000 + "/", SCHEMES).ip is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme"),
        ("ftp://example.com/", "scheme"),
        ("http://user:pass@example.com/", "userinfo"),
        ("http://user@example.com/", "userinfo"),
        ("http:///path", "invalid_url"),
        ("http://", "invalid_url"),
        ("http://[::1/", "invalid_url"),
        ("http://１２７.０.０.１/", "invalid_url"),
        ("http://0177.0.0.1/", "loopback"),
        ("http://0300.0250.0.1/", "private"),
        ("http://" + "1" * 5000 + ":x/", "invalid_url"),
    ],
)
def test_parse_destination_refusals(url: str, reason: str) -> None:
    with pytest.raises(DestinationBlockedError) as info:
        parse_destination(url, SCHEMES)
    assert info.value.details["reason"] == reason


def test_scheme_policy_can_narrow_to_https() -> None:
    with pytest.raises(DestinationBlockedError, match="only https URLs are allowed"):
        parse_destination("http://example.com/", frozenset({"https"}))
