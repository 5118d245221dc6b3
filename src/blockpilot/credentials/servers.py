"""Servers that username/password credentials of some providers are bound to (SMTP).

A credential of a provider in :data:`SERVER_BOUND_PROVIDERS` names the one server it may
authenticate to: ``host`` (any port) or ``host:port``. Blocks that take a server as input
(the e-mail block's ``smtp_server``/``smtp_port``) match only the credentials bound to it,
so a model naming another server gets setup requirements, never the password
(docs/security.md, "Credentials bound to a server").
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from blockpilot.errors import InvalidInputError
from blockpilot.net.urls import is_valid_host, normalise_host

SERVER_BOUND_PROVIDERS: frozenset[str] = frozenset({"smtp"})
"""Providers whose username/password credentials must name their server."""

_EXAMPLE = "smtp.example.com or smtp.example.com:587"


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """The server a credential is bound to; ``port`` None means any port of ``host``."""

    host: str
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> ServerAddress:
        """Parse ``host``, ``host:port`` or ``[v6]:port``, normalised like request hosts.

        Raises:
            InvalidInputError: Not a single host with an optional port.
        """
        raw = text.strip()
        if not raw:
            raise InvalidInputError(f"The server host is empty; give one such as {_EXAMPLE}")
        if "://" in raw or any(ch in raw for ch in "/@*?#") or any(c.isspace() for c in raw):
            raise InvalidInputError(
                f"Invalid server host {text[:300]!r}: give a host such as {_EXAMPLE} "
                "(no scheme, path, user or wildcard)"
            )
        if raw.count(":") > 1 and not raw.startswith("["):
            raw = f"[{raw}]"  # a bare IPv6 address
        try:
            parts = urlsplit(f"//{raw}")
            port = parts.port
            host = normalise_host(parts.hostname or "")
        except ValueError:
            host, port = "", None
        if not host or not is_valid_host(host) or port == 0:
            raise InvalidInputError(
                f"Invalid server host {text[:300]!r}: give a host such as {_EXAMPLE}"
            )
        return cls(host, port)

    @classmethod
    def of(cls, host: str, port: int | None) -> ServerAddress:
        """The server a block was asked to use (a host input and an optional port input)."""
        return cls.parse(host if port is None else f"{cls.parse(host).bracketed}:{port}")

    @property
    def bracketed(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def __str__(self) -> str:
        return self.bracketed if self.port is None else f"{self.bracketed}:{self.port}"

    def admits(self, requested: ServerAddress) -> bool:
        """True when a credential bound to *self* may authenticate to *requested*.

        The hosts must be equal; a port bound here must be the requested one (a request that
        names no port gets the bound port).
        """
        if requested.host != self.host:
            return False
        return self.port is None or requested.port is None or requested.port == self.port


def needs_server(provider: str, type_: str, host: str | None) -> bool:
    """True for a credential that must name its server and does not (stored before 0004)."""
    return provider in SERVER_BOUND_PROVIDERS and type_ == "user_password" and not host
