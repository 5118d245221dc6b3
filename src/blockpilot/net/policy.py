"""Where the guarded client may connect, and the limits it applies."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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
        allowed_hosts: ``(host, port)`` pairs exempt from the private-address guard, for
            local test servers and operator-trusted provider base URLs. A ``None`` port
            matches any port. Hosts are normalised like request hosts.
        allowed_schemes: URL schemes that may be requested (at most http and https).
        max_redirects: Redirects followed before giving up.
        max_response_bytes: Largest decoded response body accepted.
        timeout_seconds: Deadline for a whole request, redirects and body included.
    """

    allowed_hosts: frozenset[tuple[str, int | None]] = frozenset()
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

    def is_exempt(self, host: str, port: int) -> bool:
        """True when *host*:*port* is exempt from the private-address guard."""
        try:
            host = normalise_host(host)
        except ValueError:
            return False
        return (host, port) in self.allowed_hosts or (host, None) in self.allowed_hosts
