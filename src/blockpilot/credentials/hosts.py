"""Host patterns of host-scoped credentials and how request URLs match them."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from blockpilot.errors import InvalidInputError
from blockpilot.net.urls import is_valid_host, normalise_host

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _normalise_host(host: str) -> str:
    """Canonical host, encoded exactly as the guarded HTTP client encodes request hosts."""
    host = host.strip()
    wildcard = host.startswith("*.")
    try:
        canonical = normalise_host(host[2:] if wildcard else host)
    except ValueError:
        return ""
    return f"*.{canonical}" if wildcard else canonical


@dataclass(frozen=True, slots=True)
class HostPattern:
    """Where a host-scoped credential may be sent.

    ``host`` is exact or ``*.example.com`` (subdomains and the bare domain). ``port`` of
    ``None`` means the default ports 80/443 (or none given). ``scheme`` of ``https``
    forbids plain http (a downgrade); so does a bare host (no scheme, no port), which names
    the host's HTTPS site: its headers never cross the network in clear text unless the
    pattern says so (``http://host``, or ``host:port`` for a service on its own port).
    """

    host: str
    port: int | None = None
    scheme: str | None = None

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        """Parse ``host``, ``host:port``, ``*.domain``, ``[v6]:port`` or ``https://host[:port]``."""
        raw = text.strip()
        if not raw:
            raise InvalidInputError("Host pattern is empty; give a host such as api.example.com")
        scheme: str | None = None
        if "://" in raw:
            scheme, _, raw = raw.partition("://")
            scheme = scheme.lower()
            if scheme not in _DEFAULT_PORTS:
                raise InvalidInputError(
                    f"Host pattern scheme must be http or https, not {scheme!r}"
                )
            raw = raw.split("/", 1)[0]
        if "/" in raw or "@" in raw or any(ch.isspace() for ch in raw):
            raise InvalidInputError(
                f"Invalid host pattern {text!r}: use host, host:port or *.domain (no path or user)"
            )
        try:
            parts = urlsplit(f"//{raw}")
            port = parts.port
        except ValueError:  # a bad port, or unbalanced IPv6 brackets
            raise InvalidInputError(
                f"Invalid host pattern {text!r}: use host, host:port, [v6 address]:port or *.domain"
            ) from None
        if port == 0:
            raise InvalidInputError(f"Invalid port in host pattern {text!r}")
        host = _normalise_host(parts.hostname or "")
        if (
            not host
            or host == "*"
            or ("*" in host and not host.startswith("*."))
            or host.count("*") > 1
        ):
            raise InvalidInputError(
                f"Invalid host pattern {text!r}: wildcards are only allowed as a leading '*.'"
            )
        domain = host[2:] if host.startswith("*.") else host
        if not is_valid_host(domain):
            raise InvalidInputError(f"Invalid host pattern {text!r}: {domain!r} is not a host name")
        if host.startswith("*.") and "." not in domain:
            # "*.com" would send the headers to every host under a top-level domain.
            raise InvalidInputError(
                f"Invalid host pattern {text!r}: a wildcard needs a domain such as *.example.com"
            )
        return cls(host=host, port=port, scheme=scheme)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        text = f"{host}:{self.port}" if self.port is not None else host
        return f"{self.scheme}://{text}" if self.scheme else text

    def matches_url(self, url: str) -> bool:
        """True when *url* may receive this credential's headers."""
        try:
            parts = urlsplit(url.strip())
            url_port = parts.port
        except ValueError:
            return False
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or parts.username is not None:
            return False
        if self.scheme == "https" and scheme != "https":
            return False
        if self.scheme is None and self.port is None and scheme != "https":
            return False  # a bare host is its https site: plain http would be a downgrade
        host = _normalise_host(parts.hostname or "")
        if not host or not is_valid_host(host):
            return False  # "evil.com\\.api.example.com" and the like are no host of ours
        if self.port is not None:
            if (url_port or _DEFAULT_PORTS[scheme]) != self.port:
                return False
        elif url_port is not None and url_port not in (80, 443):
            return False
        if self.host.startswith("*."):
            domain = self.host[2:]
            return host == domain or host.endswith("." + domain)
        return host == self.host
