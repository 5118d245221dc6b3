"""Parse and vet request URLs before anything is resolved or connected."""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from urllib.parse import urlsplit

import httpx

from blockpilot.errors import DestinationBlockedError
from blockpilot.net._ranges import IPAddress, blocked_reason

DEFAULT_PORTS = {"http": 80, "https": 443}

_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
# Bounded so a huge numeric label cannot hit int()'s digit limit.
_INET_ATON_PART = re.compile(r"0[xX][0-9a-fA-F]{0,32}|0[0-7]{0,32}|[1-9][0-9]{0,32}")


def parse_legacy_ipv4(text: str) -> IPv4Address | None:
    """Read *text* the way ``inet_aton`` does, or return ``None`` if it is not an address.

    Covers the forms resolvers accept besides dotted quads: ``2130706433``, ``0x7f.1``,
    ``0177.0.0.1`` and ``127.1`` all mean 127.0.0.1.
    """
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        if not _INET_ATON_PART.fullmatch(part):
            return None
        if part[:2].lower() == "0x":
            values.append(int(part[2:] or "0", 16))
        elif part.startswith("0"):
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *head, last = values
    if any(value > 0xFF for value in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    number = last
    for index, value in enumerate(head):
        number |= value << (8 * (3 - index))
    return IPv4Address(number)


def normalise_host(host: str) -> str:
    """Lowercase, IDNA-encode and strip a trailing dot; IP literals become canonical.

    Raises:
        ValueError: The host is not a valid IDNA name.
    """
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    ip = parse_ip_literal(host)
    if ip is not None:
        return str(ip)
    if not host.isascii():
        # Same IDNA 2008 encoding httpx applies to request URLs, so the two always agree.
        try:
            host = httpx.URL(scheme="http", host=host).raw_host.decode("ascii")
        except httpx.InvalidURL as exc:
            raise ValueError(str(exc)) from None
    return host


def is_valid_host(host: str) -> bool:
    """True for a normalised DNS name or IP literal (no ports, paths or wildcards)."""
    return bool(_HOST_NAME.fullmatch(host)) or parse_ip_literal(host) is not None


def parse_ip_literal(host: str) -> IPAddress | None:
    """Return the address *host* spells in any numeric form, else ``None``."""
    try:
        return ip_address(host)
    except ValueError:
        return parse_legacy_ipv4(host)


@dataclass(frozen=True, slots=True)
class Destination:
    """A vetted request target.

    Attributes:
        url: The URL to send, fragment removed.
        host: Normalised host (see :func:`normalise_host`).
        port: Effective port (default port filled in).
        ip: The address when the host is an IP literal in any encoding.
    """

    url: httpx.URL
    host: str
    port: int
    ip: IPAddress | None

    @property
    def scheme(self) -> str:
        return self.url.scheme

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @property
    def wire_host(self) -> str:
        """The host exactly as the connection layer will see it."""
        return self.url.raw_host.decode("ascii")


def blocked(host: str, reason: str, message: str) -> DestinationBlockedError:
    """Build the error for a refused destination (never includes the full URL)."""
    return DestinationBlockedError(message, details={"host": host, "reason": reason})


def blocked_address(host: str, reason: str) -> DestinationBlockedError:
    """Build the error for a host that reaches a blocked address."""
    return blocked(
        host,
        reason,
        f"Destination blocked: {host} resolves to a private or reserved address ({reason}). "
        "Requests to internal networks are not allowed.",
    )


def parse_url(url: str) -> httpx.URL:
    """Parse *url* with httpx, the same parser that will send it.

    Raises:
        DestinationBlockedError: The URL is malformed.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        error = exc
    else:
        _check_idna(parsed)
        return parsed
    # httpx refuses some numeric hosts (``0177.0.0.1``); name the address they mean.
    try:
        host = urlsplit(url).hostname or ""
    except (ValueError, TypeError, AttributeError):
        host = ""
    ip = parse_ip_literal(host) if host else None
    reason = blocked_reason(ip) if ip is not None else None
    if reason is not None:
        raise blocked_address(host, reason)
    # httpx names only the offending part, never the whole URL.
    raise blocked("", "invalid_url", f"Destination blocked: the URL is not valid ({error}).")


def _check_idna(parsed: httpx.URL) -> None:
    """Refuse a host httpx accepts but cannot decode (``xn--localhost-``, ``xn--``).

    httpx decodes punycode labels lazily, while sending; a malformed label would then escape
    as a bare ``idna`` error instead of this module's typed refusal.
    """
    try:
        parsed.host  # noqa: B018 - decoding is the check
    except ValueError:  # idna.IDNAError and friends are UnicodeError, a ValueError
        raise blocked(
            parsed.raw_host.decode("ascii", "replace"),
            "invalid_url",
            "Destination blocked: the URL's host is not a valid international domain name.",
        ) from None


def parse_destination(url: httpx.URL | str, allowed_schemes: frozenset[str]) -> Destination:
    """Check the static parts of *url*: scheme, userinfo and host.

    Raises:
        DestinationBlockedError: The URL is malformed or not an allowed kind of URL.
    """
    parsed = url if isinstance(url, httpx.URL) else parse_url(url)
    _check_idna(parsed)
    host = parsed.raw_host.decode("ascii")
    schemes = allowed_schemes & DEFAULT_PORTS.keys()
    if parsed.scheme not in schemes:
        allowed = " and ".join(sorted(schemes))
        raise blocked(
            host,
            "scheme",
            f"Destination blocked: scheme {parsed.scheme!r} is not allowed; "
            f"only {allowed} URLs are allowed.",
        )
    if parsed.userinfo:
        raise blocked(
            host,
            "userinfo",
            "Destination blocked: URLs with embedded credentials (user:password@host) are "
            "not allowed; send credentials in headers instead.",
        )
    try:
        normal = normalise_host(host)
    except ValueError:
        normal = ""
    if not normal:
        raise blocked(host, "invalid_url", "Destination blocked: the URL has no valid host.")
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    return Destination(
        url=parsed.copy_with(fragment=None),
        host=normal,
        port=port,
        ip=parse_ip_literal(normal),
    )
