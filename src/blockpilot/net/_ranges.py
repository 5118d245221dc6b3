"""The explicit table of network ranges outbound requests may not reach.

``ipaddress``'s ``is_private``/``is_global`` are not used: they were wrong for several
ranges before CVE-2024-4032 was fixed (3.11.10), and this service runs on 3.11.7.

Where the rows come from (docs/security.md): IANA's "IPv4 Special-Purpose Address Registry"
and "IPv6 Special-Purpose Address Registry" (RFC 6890 and the RFCs named per row): every
entry that is not globally reachable is blocked, and so are the deprecated ones. Entries
IANA marks globally reachable (192.0.0.9 and .10 anycast, AS112 192.31.196.0/24,
192.175.48.0/24, 2620:4f:8000::/48, AMT 192.52.193.0/24) stay reachable, except where a
covering row blocks them anyway (192.0.0.0/24, 2001::/23). Cloud host endpoints that no
registry lists (the metadata services, Azure's WireServer) are added by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

IPAddress = IPv4Address | IPv6Address

_U32 = 0xFFFFFFFF


def _low32(ip: IPv6Address) -> IPv4Address:
    return IPv4Address(int(ip) & _U32)


def _sixtofour(ip: IPv6Address) -> IPv4Address:
    # 2002:AABB:CCDD::/48 carries the IPv4 address in bits 16..48.
    return IPv4Address((int(ip) >> 80) & _U32)


@dataclass(frozen=True, slots=True)
class BlockedRange:
    """One row of the table.

    Attributes:
        network: The network the row covers.
        reason: Short human reason, shown in error messages.
        embedded: For translation prefixes, extracts the IPv4 address the IPv6 address
            stands for; the row then blocks only when that IPv4 address is blocked.
    """

    network: IPv4Network | IPv6Network
    reason: str
    embedded: Callable[[IPv6Address], IPv4Address] | None = None


def _row(
    cidr: str, reason: str, embedded: Callable[[IPv6Address], IPv4Address] | None = None
) -> BlockedRange:
    return BlockedRange(ip_network(cidr), reason, embedded)


# Rows are matched in order, so more specific rows (with better reasons) come first.
IPV4_RANGES: tuple[BlockedRange, ...] = (
    _row("0.0.0.0/8", "unspecified"),
    _row("10.0.0.0/8", "private"),  # RFC 1918
    _row("100.64.0.0/10", "carrier-grade NAT"),  # RFC 6598 (holds Alibaba's 100.100.100.200)
    _row("127.0.0.0/8", "loopback"),
    # Azure's host endpoint (WireServer: agent and extension config, DNS, health probes);
    # not in IANA's registry but internal to every Azure VM.
    _row("168.63.129.16/32", "cloud host endpoint"),
    _row("169.254.0.0/16", "link-local/metadata"),  # RFC 3927
    _row("172.16.0.0/12", "private"),
    # RFC 6890; holds DS-Lite 192.0.0.0/29, NAT64 discovery .170/.171, Oracle's metadata .192.
    _row("192.0.0.0/24", "IETF protocol assignments"),
    _row("192.0.2.0/24", "documentation"),
    _row("192.88.99.0/24", "6to4 relay anycast"),
    _row("192.168.0.0/16", "private"),
    _row("198.18.0.0/15", "benchmarking"),
    _row("198.51.100.0/24", "documentation"),
    _row("203.0.113.0/24", "documentation"),
    _row("224.0.0.0/4", "multicast"),
    _row("255.255.255.255/32", "broadcast"),
    _row("240.0.0.0/4", "reserved"),
)

IPV6_RANGES: tuple[BlockedRange, ...] = (
    _row("::/128", "unspecified"),
    _row("::1/128", "loopback"),
    # Deprecated IPv4-compatible addresses (::a.b.c.d); nothing legitimate uses them.
    _row("::/96", "IPv4-compatible (deprecated)"),
    _row("::ffff:0:0/96", "IPv4-mapped", _low32),
    # SIIT "IPv4-translated" addresses (RFC 2765, ::ffff:0:a.b.c.d): a stateless translator
    # turns them into the IPv4 address they carry.
    _row("::ffff:0:0:0/96", "IPv4-translated", _low32),
    _row("64:ff9b::/96", "NAT64", _low32),
    _row("64:ff9b:1::/48", "local-use NAT64"),
    _row("100::/64", "discard-only"),  # RFC 6666
    _row("100:0:0:1::/64", "dummy prefix"),  # RFC 9780
    # RFC 2928: Teredo 2001::/32, benchmarking 2001:2::/48, ORCHID, AMT, DETs and the rest.
    _row("2001::/23", "IETF special-purpose"),
    _row("2001:db8::/32", "documentation"),  # RFC 3849
    _row("2002::/16", "6to4", _sixtofour),  # RFC 3056
    _row("3fff::/20", "documentation"),  # RFC 9637
    _row("5f00::/16", "segment routing (SRv6) SIDs"),  # RFC 9602
    _row("fd00:ec2::254/128", "link-local/metadata"),
    _row("fc00::/7", "unique local (private)"),
    _row("fe80::/10", "link-local"),
    _row("fec0::/10", "site-local (deprecated)"),
    _row("ff00::/8", "multicast"),
)

BLOCKED_RANGES: tuple[BlockedRange, ...] = IPV4_RANGES + IPV6_RANGES


def blocked_reason(ip: IPAddress) -> str | None:
    """Say why *ip* is blocked.

    Args:
        ip: The address a host resolved to (an IPv6 scope id is ignored).

    Returns:
        A short reason such as ``"loopback"``, or ``None`` when the address is allowed.
    """
    rows = IPV4_RANGES if isinstance(ip, IPv4Address) else IPV6_RANGES
    for row in rows:
        if ip not in row.network:
            continue
        if row.embedded is None:
            return row.reason
        # A translation prefix is as dangerous as the IPv4 address it reaches.
        assert isinstance(ip, IPv6Address)
        return blocked_reason(row.embedded(ip))
    return None


def is_blocked_address(ip: IPAddress) -> bool:
    """True when *ip* is private, loopback, link-local, reserved or otherwise internal."""
    return blocked_reason(ip) is not None
