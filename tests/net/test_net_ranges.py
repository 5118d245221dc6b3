"""The blocked-range table: every row, translation prefixes, and a property check."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blockpilot.net import is_blocked_address
from blockpilot.net._ranges import (
    BLOCKED_RANGES,
    IPV4_RANGES,
    IPV6_RANGES,
    BlockedRange,
    blocked_reason,
)

# Independent of the module: which IPv6 prefixes embed an IPv4 address, and where.
_EMBEDDINGS = {
    "::ffff:0:0/96": lambda n: n & 0xFFFFFFFF,
    "::ffff:0:0:0/96": lambda n: n & 0xFFFFFFFF,  # SIIT IPv4-translated
    "64:ff9b::/96": lambda n: n & 0xFFFFFFFF,
    "2002::/16": lambda n: (n >> 80) & 0xFFFFFFFF,
}


def _within(n: int, row: BlockedRange) -> bool:
    shift = row.network.max_prefixlen - row.network.prefixlen
    return n >> shift == int(row.network.network_address) >> shift


def _reference_v4(n: int) -> bool:
    return any(_within(n, row) for row in IPV4_RANGES)


def _reference(ip: IPv4Address | IPv6Address) -> bool:
    n = int(ip)
    if ip.version == 4:
        return _reference_v4(n)
    for row in IPV6_RANGES:
        if _within(n, row):
            embed = _EMBEDDINGS.get(str(row.network))
            return True if embed is None else _reference_v4(embed(n))
    return False


def _plain_rows() -> list[BlockedRange]:
    return [row for row in BLOCKED_RANGES if row.embedded is None]


def test_embedding_rows_are_exactly_the_translation_prefixes() -> None:
    embedding = {str(row.network) for row in BLOCKED_RANGES if row.embedded is not None}
    assert embedding == set(_EMBEDDINGS)


@pytest.mark.parametrize("row", _plain_rows(), ids=lambda row: str(row.network))
def test_every_plain_row_is_blocked(row: BlockedRange) -> None:
    net = row.network
    for ip in (net.network_address, net.broadcast_address, net[net.num_addresses // 2]):
        assert is_blocked_address(ip), ip
        assert blocked_reason(ip)


@pytest.mark.parametrize(
    "row", [r for r in BLOCKED_RANGES if r.embedded], ids=lambda row: str(row.network)
)
def test_translation_rows_follow_the_embedded_ipv4(row: BlockedRange) -> None:
    base = int(row.network.network_address)
    shift = 80 if str(row.network) == "2002::/16" else 0
    loopback = IPv6Address(base | (int(IPv4Address("127.0.0.1")) << shift))
    metadata = IPv6Address(base | (int(IPv4Address("169.254.169.254")) << shift))
    public = IPv6Address(base | (int(IPv4Address("8.8.8.8")) << shift))
    assert blocked_reason(loopback) == "loopback"
    assert blocked_reason(metadata) == "link-local/metadata"
    assert not is_blocked_address(public)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("169.254.169.254", "link-local/metadata"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("224.0.0.251", "multicast"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:7f00:1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::127.0.0.1", "IPv4-compatible (deprecated)"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("2002:a9fe:a9fe::1", "link-local/metadata"),
        ("fd00:ec2::254", "link-local/metadata"),
        ("fd12:3456::1", "unique local (private)"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fec0::1", "site-local (deprecated)"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "documentation"),
        ("2001::1", "IETF special-purpose"),
        ("100::1", "discard-only"),
        ("64:ff9b:1::1", "local-use NAT64"),
    ],
)
def test_reasons(address: str, reason: str) -> None:
    assert blocked_reason(ip_address(address)) == reason


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.215.14",
        "100.63.255.255",
        "100.128.0.0",
        "172.32.0.0",
        "192.0.3.1",
        "223.255.255.255",
        "2606:4700:4700::1111",
        "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(ip_address(address)) is None


def _near_rows(rows: tuple[BlockedRange, ...], bits: int) -> st.SearchStrategy[int]:
    """Integers inside or just outside a table row, where mistakes would show."""

    def around(row: BlockedRange) -> st.SearchStrategy[int]:
        low, high = int(row.network.network_address), int(row.network.broadcast_address)
        return st.integers(max(low - 2, 0), min(high + 2, 2**bits - 1))

    return st.sampled_from(rows).flatmap(around)


@given(st.one_of(st.integers(0, 2**32 - 1), _near_rows(IPV4_RANGES, 32)))
def test_ipv4_matches_reference(n: int) -> None:
    ip = IPv4Address(n)
    assert is_blocked_address(ip) == _reference(ip)


@given(st.one_of(st.integers(0, 2**128 - 1), _near_rows(IPV6_RANGES, 128)))
def test_ipv6_matches_reference(n: int) -> None:
    ip = IPv6Address(n)
    assert is_blocked_address(ip) == _reference(ip)


@given(st.one_of(st.integers(0, 2**32 - 1), _near_rows(IPV4_RANGES, 32)))
def test_translated_forms_agree_with_ipv4(n: int) -> None:
    v4_blocked = is_blocked_address(IPv4Address(n))
    mapped = IPv6Address(0xFFFF << 32 | n)
    nat64 = IPv6Address(int(IPv6Address("64:ff9b::")) | n)
    sixtofour = IPv6Address(0x2002 << 112 | n << 80)
    assert is_blocked_address(mapped) == v4_blocked
    assert is_blocked_address(nat64) == v4_blocked
    assert is_blocked_address(sixtofour) == v4_blocked
    if v4_blocked:
        assert blocked_reason(mapped) == blocked_reason(IPv4Address(n))
