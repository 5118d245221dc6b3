"""Where the guarded client may connect, and the limits it applies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from blockpilot.errors import ConfigurationError
from blockpilot.net.urls import is_valid_host, normalise_host

MiB = 1024 * 1024


def _parse_entry(entry: str) -> tuple[str, int | None]:
    text = entry.strip()
    port_text: str | None = None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host = text  # a bare name, or a bare IPv6 address such as ``::1``
    if not host or any(ch in host for ch in "/@?#") or any(ch.isspace() for ch in host):
        raise ValueError
    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError
        port = int(port_text)
    normal = normalise_host(host)
    if not is_valid_host(normal):
        raise ValueError
    return normal, port


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """Limits of the guarded client.

    Attributes:
        allowed_hosts: ``(host, port)`` pairs exempt from the private-address guard for
            every block (``BLOCKPILOT_HTTP_ALLOWED_HOSTS``: local relays, test servers). A
            ``None`` port matches any port. Hosts are normalised like request hosts.
        scoped_hosts: Pairs exempt for the one block run this policy belongs to (its
            provider's or block source's operator-set base URL, see
            :meth:`GuardedHTTPClient.with_exemptions`), and only on a request that starts
            at one of them: a redirect from any other host sees them as private.
        allowed_schemes: URL schemes that may be requested (at most http and https).
        max_redirects: Redirects followed before giving up.
        max_response_bytes: Largest decoded response body accepted.
        timeout_seconds: Deadline for a whole request, redirects and body included.
    """

    allowed_hosts: frozenset[tuple[str, int | None]] = frozenset()
    scoped_hosts: frozenset[tuple[str, int | None]] = frozenset()
    allowed_schemes: frozenset[str] = frozenset({"http", "https"})
    max_redirects: int = 5
    max_response_bytes: int = 10 * MiB
    timeout_seconds: float = 30.0

    @classmethod
    def from_host_list(cls, entries: Iterable[str], **limits: Any) -> DestinationPolicy:
        """Build a policy from ``host``, ``host:port`` or ``[v6]:port`` entries.

        Args:
            entries: Exempt destinations, as an operator would write them.
            **limits: Any other field of the policy.

        Raises:
            ConfigurationError: An entry is not a valid host[:port].
        """
        hosts: set[tuple[str, int | None]] = set()
        for entry in entries:
            try:
                hosts.add(_parse_entry(entry))
            except ValueError:
                raise ConfigurationError(
                    f"Invalid allowed host {entry!r}: use host, host:port or [ipv6]:port.",
                    details={"entry": entry},
                ) from None
        return cls(allowed_hosts=frozenset(hosts), **limits)

    def is_exempt(self, host: str, port: int, *, scoped: bool = True) -> bool:
        """True when *host*:*port* is exempt from the private-address guard.

        Args:
            scoped: Whether this block's own exemptions (``scoped_hosts``) count; False for
                a redirect hop of a request that started elsewhere.
        """
        try:
            host = normalise_host(host)
        except ValueError:
            return False
        hosts = self.allowed_hosts | self.scoped_hosts if scoped else self.allowed_hosts
        return (host, port) in hosts or (host, None) in hosts


def exempt_destination(url: str) -> tuple[str, int]:
    """``(host, port)`` of an operator-set base URL, normalised as the guarded client does.

    Raises:
        ConfigurationError: *url* is not an absolute http(s) URL with a valid host.
    """
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        port = parts.port or {"http": 80, "https": 443}[scheme]
        host = normalise_host(parts.hostname or "")
    except (KeyError, ValueError):
        host, port = "", 0
    if not is_valid_host(host):
        raise ConfigurationError(
            f"Invalid base URL {url[:200]!r}: use an absolute http(s) URL such as "
            "http://10.0.0.5:11434/v1",
            details={"url": url[:200]},
        )
    return host, port


class TrustedDestinations:
    """Operator-set base URLs, each exempt from the private-address guard for one scope.

    A scope is a provider name (``BLOCKPILOT_PROVIDER_<NAME>_BASE_URL``) or a block source;
    a block reaches the destinations of the scopes it declares
    (:attr:`blockpilot.blocks.base.Block.trusted_scopes`) and no others
    (docs/security.md, "Operator base URLs").
    """

    def __init__(self, base_urls: Mapping[str, str] | None = None) -> None:
        self._by_scope: dict[str, frozenset[tuple[str, int | None]]] = {}
        for scope, url in (base_urls or {}).items():
            self.add(scope, url)

    def add(self, scope: str, url: str) -> None:
        """Exempt *url*'s host and port for the blocks of *scope* (besides any before).

        Raises:
            ConfigurationError: *url* is not an absolute http(s) URL.
        """
        before = self._by_scope.get(scope, frozenset())
        self._by_scope[scope] = before | {exempt_destination(url)}

    def for_scopes(self, scopes: Iterable[str]) -> frozenset[tuple[str, int | None]]:
        """Every destination exempt for a block of *scopes*."""
        found: set[tuple[str, int | None]] = set()
        for scope in scopes:
            found |= self._by_scope.get(scope, frozenset())
        return frozenset(found)
