"""Which ``Host`` and ``Origin`` headers ``/mcp`` accepts (``docs/mcp.md``).

The MCP streamable-HTTP transport requires servers to validate ``Origin``: a web page in
someone's browser must not be able to drive the MCP endpoint, whether by a cross-site
request (a foreign ``Origin``) or by DNS rebinding (a name of the attacker's that resolves
to this server, so ``Host`` and ``Origin`` both carry the attacker's name). So a request is
refused when either header names a site this service does not serve.

Accepted by default: the loopback names (``localhost``, ``127.0.0.1``, ``[::1]``) on any
port, and the host of ``public_url`` (which ``blockpilot serve`` sets to its own address);
more through ``BLOCKPILOT_MCP_ALLOWED_HOSTS`` / ``BLOCKPILOT_MCP_ALLOWED_ORIGINS`` (``*``
accepts any). A request without ``Origin`` is accepted: browsers send it on every
cross-origin request and on every POST, so its absence means a client that is not a
browser page (an MCP client, curl), which DNS rebinding cannot use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import Scope

from blockpilot.errors import OriginNotAllowedError
from blockpilot.settings import Settings

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class _Site:
    """A host name and an optional port (None: any port)."""

    name: str
    port: int | None

    def admits(self, name: str, port: int | None) -> bool:
        return self.name == name and (self.port is None or self.port == port)


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``name[:port]`` (IPv6 in brackets) → (lower-case name, port); None if malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            return None
        name, rest = value[: end + 1], value[end + 1 :]
    else:
        name, _, port_text = value.partition(":")
        rest = f":{port_text}" if _ else ""
    name = name.rstrip(".")
    if not name:
        return None
    if not rest:
        return name, None
    if not rest.startswith(":") or not rest[1:].isdigit():
        return None
    return name, int(rest[1:])


def _site(pattern: str) -> _Site | None:
    """A configured host: ``name``, ``name:port`` or ``name:*`` (any port)."""
    pattern = pattern.strip()
    if pattern.endswith(":*"):
        pattern = pattern[:-2]
    parsed = _split_host(pattern)
    return None if parsed is None else _Site(*parsed)


def _origin(value: str) -> tuple[str, str, int] | None:
    """``scheme://host[:port]`` → (scheme, name, port with the scheme's default filled in)."""
    parts = urlsplit(value.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc or parts.path not in ("", "/"):
        return None
    parsed = _split_host(parts.netloc)
    if parsed is None:
        return None
    name, port = parsed
    return scheme, name, port if port is not None else _DEFAULT_PORTS[scheme]


@dataclass(frozen=True, slots=True)
class _OriginPattern:
    scheme: str
    site: _Site

    @classmethod
    def parse(cls, pattern: str) -> _OriginPattern | None:
        """``scheme://host``, ``scheme://host:port`` or ``scheme://host:*``."""
        pattern = pattern.strip().rstrip("/")
        any_port = pattern.endswith(":*")
        parsed = _origin(pattern[:-2] if any_port else pattern)
        if parsed is None:
            return None
        scheme, name, port = parsed
        return cls(scheme, _Site(name, None if any_port else port))


class OriginPolicy:
    """Accepts or refuses a request by its ``Host`` and ``Origin`` headers.

    Args:
        allowed_hosts: ``name``, ``name:port`` or ``name:*``; a bare name means any port.
            ``*`` accepts every host.
        allowed_origins: ``scheme://host[:port]`` or ``scheme://host:*``; ``*`` accepts
            every origin.
    """

    def __init__(self, allowed_hosts: Iterable[str], allowed_origins: Iterable[str]) -> None:
        hosts = [h.strip() for h in allowed_hosts if h.strip()]
        origins = [o.strip() for o in allowed_origins if o.strip()]
        self.any_host = "*" in hosts
        self.any_origin = "*" in origins
        self._hosts = [site for h in hosts if h != "*" and (site := _site(h)) is not None]
        self._origins = [
            pattern
            for o in origins
            if o != "*" and (pattern := _OriginPattern.parse(o)) is not None
        ]

    @classmethod
    def from_settings(cls, settings: Settings) -> OriginPolicy:
        """Loopback names on any port, ``public_url``'s host and origin, and the settings'."""
        public = urlsplit(settings.effective_public_url)
        public_origin = f"{public.scheme}://{public.netloc}"
        hosts = [*LOOPBACK_NAMES, public.netloc, *settings.mcp_allowed_hosts]
        origins = [
            *(f"{scheme}://{name}:*" for scheme in ("http", "https") for name in LOOPBACK_NAMES),
            public_origin,
            *settings.mcp_allowed_origins,
        ]
        return cls(hosts, origins)

    def host_allowed(self, host: str | None) -> bool:
        if host is None or self.any_host:
            return True  # no Host: HTTP/1.0, not a browser
        parsed = _split_host(host)
        return parsed is not None and any(site.admits(*parsed) for site in self._hosts)

    def origin_allowed(self, origin: str | None) -> bool:
        if origin is None or self.any_origin:
            return True
        parsed = _origin(origin)  # "null" (sandboxed pages, file://) parses as nothing
        if parsed is None:
            return False
        scheme, name, port = parsed
        return any(p.scheme == scheme and p.site.admits(name, port) for p in self._origins)

    def check(self, scope: Scope) -> None:
        """Raise :class:`OriginNotAllowedError` if the request's Host or Origin is foreign."""
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if not self.origin_allowed(origin):
            raise OriginNotAllowedError(
                f"Origin {str(origin)[:200]!r} is not allowed to use this MCP endpoint (a web page "
                "of another site). To allow it, add it to BLOCKPILOT_MCP_ALLOWED_ORIGINS",
                details={"header": "Origin"},
            )
        host = headers.get("host")
        if not self.host_allowed(host):
            raise OriginNotAllowedError(
                f"Host {str(host)[:200]!r} is not a name this service answers to for MCP "
                "(possible DNS rebinding). Set BLOCKPILOT_PUBLIC_URL to the address clients "
                "use, or add the name to BLOCKPILOT_MCP_ALLOWED_HOSTS",
                details={"header": "Host"},
            )


__all__ = ["LOOPBACK_NAMES", "OriginPolicy"]
