"""``--auth oauth`` for MCP sources: the MCP authorization spec as a client implements it.

* **Discovery** (:func:`discover`, when a source is added or refreshed): the server's 401
  names its protected-resource metadata in ``WWW-Authenticate: Bearer resource_metadata=…``
  (RFC 9728; else the well-known URLs are tried), which names the authorization server,
  whose metadata (RFC 8414, else OpenID discovery) gives the endpoints. The result is stored
  with the source.
* **The client** (:class:`SourceOAuthClients`): the operator's ``--client-id``/
  ``--client-secret``, or one registered dynamically (RFC 7591) on the first connect, for the
  callback URL of this service; its secret is sealed like credentials.
* **The provider** (:func:`source_provider`): an :class:`~blockpilot.oauth.providers.OAuthProvider`
  named after the source, so connecting (the setup page, the start link, the callback with
  its user verification), storing and refreshing the per-user tokens are the same code as
  for every OAuth provider; it adds the RFC 8707 ``resource`` and the client's token-endpoint
  authentication method.

See docs/sources.md (MCP servers with OAuth).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import SecretStr
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from blockpilot.credentials.crypto import CredentialCipher
from blockpilot.errors import NetworkError, OAuthDiscoveryError
from blockpilot.oauth.http import EndpointResponse, call_endpoint
from blockpilot.oauth.providers import OAuthProvider
from blockpilot.oauth.token_endpoint import CLIENT_AUTH_METHODS, ClientAuthMethod
from blockpilot.settings import Settings
from blockpilot.storage.common import utcnow
from blockpilot.storage.tables import source_oauth_clients as clients_table

DISCOVERY_SECONDS = 15.0
MAX_METADATA_BYTES = 256 * 1024
_AUTH_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_AAD_PREFIX = b"blockpilot:source-oauth-client:v1\0"
_PROBE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "blockpilot", "version": "discovery"},
    },
}


def bearer_params(header: str | None) -> dict[str, str]:
    """The auth-params of the ``Bearer`` challenge in a ``WWW-Authenticate`` value."""
    if not header:
        return {}
    at = header.lower().find("bearer")
    if at < 0:
        return {}
    params: dict[str, str] = {}
    for match in _AUTH_PARAM.finditer(header[at + len("bearer") :]):
        name, quoted, bare = match.groups()
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        params.setdefault(name.lower(), value)
    return params


def insufficient_scopes(header: str | None) -> list[str] | None:
    """The scopes a 403 ``error="insufficient_scope"`` challenge asks for; None if not one."""
    params = bearer_params(header)
    if params.get("error") != "insufficient_scope":
        return None
    return [s for s in params.get("scope", "").split() if s.isprintable()][:30]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _well_known(base: str, name: str, *, suffix_path: bool = True) -> str:
    """``scheme://host/.well-known/<name>[<path of base>]`` (RFC 8414 section 3.1)."""
    parts = urlsplit(base)
    path = parts.path.rstrip("/") if suffix_path else ""
    return urlunsplit((parts.scheme, parts.netloc, f"/.well-known/{name}{path}", "", ""))


def _check_endpoint(url: Any, what: str, server_url: str) -> str:
    """An endpoint from metadata: https (http only for an http MCP server, as in tests)."""
    if not isinstance(url, str) or not url:
        raise OAuthDiscoveryError(f"The authorization server's metadata has no {what}")
    scheme = urlsplit(url).scheme
    allowed = ("https",) if server_url.startswith("https://") else ("https", "http")
    if scheme not in allowed or not urlsplit(url).hostname:
        raise OAuthDiscoveryError(
            f"The {what} {url[:200]!r} is not an https URL",
            details={"endpoint": what},
        )
    return url


async def _get(url: str, method: str = "GET", **kwargs: Any) -> EndpointResponse | None:
    try:
        return await call_endpoint(
            method, url, timeout=DISCOVERY_SECONDS, limit=MAX_METADATA_BYTES, **kwargs
        )
    except (httpx.HTTPError, NetworkError):
        return None


async def _json_document(url: str) -> dict[str, Any] | None:
    response = await _get(url, headers={"Accept": "application/json"})
    if response is None or response.status_code != 200:
        return None
    return response.json_object()


async def discover(
    url: str, headers: Mapping[str, str] | None = None, scopes: Sequence[str] = ()
) -> dict[str, Any]:
    """The OAuth facts of the MCP server at *url*, to store with the source.

    Raises:
        OAuthDiscoveryError: a step failed (the message names it).
    """
    probe = await _get(
        url,
        "POST",
        json=_PROBE,
        headers={"Accept": "application/json, text/event-stream", **(headers or {})},
    )
    challenge = bearer_params(probe.headers.get("www-authenticate")) if probe else {}
    candidates = []
    if challenge.get("resource_metadata"):
        named = challenge["resource_metadata"]
        # The server's own metadata: on its origin, so a server cannot make us fetch elsewhere.
        if _origin(named) != _origin(url):
            raise OAuthDiscoveryError(
                f"The server names protected-resource metadata on another origin ({named[:200]})"
            )
        candidates.append(named)
    candidates += [
        _well_known(url, "oauth-protected-resource"),
        _well_known(url, "oauth-protected-resource", suffix_path=False),
    ]
    resource_doc: dict[str, Any] | None = None
    for candidate in dict.fromkeys(candidates):
        resource_doc = await _json_document(candidate)
        if resource_doc is not None:
            break
    if resource_doc is None:
        raise OAuthDiscoveryError(
            f"The MCP server at {url[:200]} publishes no protected-resource metadata (RFC 9728): "
            "it is not an MCP server with OAuth; use --auth bearer or none",
            details={"url": url[:200]},
        )
    resource = resource_doc.get("resource") or url
    if not isinstance(resource, str) or _origin(resource) != _origin(url):
        raise OAuthDiscoveryError(
            "The protected-resource metadata names another resource than the server "
            f"({str(resource)[:200]})"
        )
    servers = resource_doc.get("authorization_servers")
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], str):
        raise OAuthDiscoveryError("The protected-resource metadata names no authorization server")
    issuer = _check_endpoint(servers[0], "authorization server", url)
    server_doc = await _authorization_server(issuer)
    if server_doc is None:
        raise OAuthDiscoveryError(
            f"No authorization-server metadata (RFC 8414 or OpenID discovery) for {issuer[:200]}"
        )
    methods = server_doc.get("code_challenge_methods_supported")
    if not isinstance(methods, list) or "S256" not in methods:
        raise OAuthDiscoveryError(
            "The authorization server does not announce PKCE with S256, which MCP requires"
        )
    advertised = _list(resource_doc, "scopes_supported")
    wanted = list(scopes) or _scopes(challenge.get("scope")) or advertised
    registration = server_doc.get("registration_endpoint")
    return {
        "resource": resource,
        "issuer": issuer,
        "authorization_endpoint": _check_endpoint(
            server_doc.get("authorization_endpoint"), "authorization endpoint", url
        ),
        "token_endpoint": _check_endpoint(server_doc.get("token_endpoint"), "token endpoint", url),
        "registration_endpoint": (
            _check_endpoint(registration, "registration endpoint", url) if registration else None
        ),
        "token_auth_methods": _list(server_doc, "token_endpoint_auth_methods_supported")
        or ["client_secret_basic"],  # RFC 8414's default
        "scopes": wanted[:30],
    }


def _scopes(value: Any) -> list[str]:
    return [s for s in value.split() if s.isprintable()] if isinstance(value, str) else []


def _list(doc: Mapping[str, Any], key: str) -> list[str]:
    value = doc.get(key)
    return [str(v) for v in value if isinstance(v, str)] if isinstance(value, list) else []


async def _authorization_server(issuer: str) -> dict[str, Any] | None:
    """RFC 8414 metadata, else OpenID discovery, in the order the MCP spec gives."""
    path = urlsplit(issuer).path.rstrip("/")
    urls = [
        _well_known(issuer, "oauth-authorization-server"),
        _well_known(issuer, "openid-configuration"),
    ]
    if path:
        urls.append(issuer.rstrip("/") + "/.well-known/openid-configuration")
    for candidate in urls:
        doc = await _json_document(candidate)
        # RFC 8414 section 3.3: the issuer must be the one the URL was built from.
        if doc is not None and str(doc.get("issuer", "")).rstrip("/") == issuer.rstrip("/"):
            return doc
    return None


# -- the client ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceClient:
    """The OAuth app of one source at its authorization server."""

    client_id: str
    client_secret: SecretStr | None
    auth_method: ClientAuthMethod
    redirect_uri: str | None
    registered: bool


def choose_auth_method(supported: Sequence[str], has_secret: bool) -> ClientAuthMethod:
    """How a client authenticates: what the server supports, preferring the form."""
    if not has_secret:
        return "none"
    for method in ("client_secret_post", "client_secret_basic"):
        if method in supported:
            return method
    return "client_secret_basic"


async def register_client(oauth: Mapping[str, Any], source: str, redirect_uri: str) -> SourceClient:
    """Dynamic client registration (RFC 7591) of this service for *redirect_uri*.

    Raises:
        OAuthDiscoveryError: no registration endpoint, or the server refused or answered badly.
    """
    endpoint = oauth.get("registration_endpoint")
    if not endpoint:
        raise OAuthDiscoveryError(
            f"The authorization server of {source!r} does not offer dynamic client registration; "
            f"the operator gives the app with 'blockpilot sources add mcp {source} URL --auth "
            "oauth --client-id … --client-secret …'"
        )
    supported = list(oauth.get("token_auth_methods") or [])
    method = "none" if "none" in supported and len(supported) == 1 else None
    method = method or choose_auth_method(supported, has_secret=True)
    request = {
        "client_name": f"blockpilot ({source})",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
    }
    if oauth.get("scopes"):
        request["scope"] = " ".join(oauth["scopes"])
    response = await _get(endpoint, "POST", json=request, headers={"Accept": "application/json"})
    doc = response.json_object() if response is not None else None
    if response is None or response.status_code not in (200, 201) or doc is None:
        status = "no answer" if response is None else f"HTTP {response.status_code}"
        error = (doc or {}).get("error")
        shown = f" ({error})" if isinstance(error, str) and error.isidentifier() else ""
        raise OAuthDiscoveryError(
            f"The authorization server of {source!r} refused to register this service "
            f"({status}{shown})",
            details={"source": source},
        )
    client_id = doc.get("client_id")
    secret = doc.get("client_secret")
    answered = doc.get("token_endpoint_auth_method") or (
        "client_secret_basic" if secret else "none"
    )  # RFC 7591 section 2's default
    if (
        not isinstance(client_id, str)
        or not client_id
        or len(client_id) > 512
        or answered not in CLIENT_AUTH_METHODS
        or (secret is not None and not isinstance(secret, str))
    ):
        raise OAuthDiscoveryError(
            f"The authorization server of {source!r} answered the registration badly"
        )
    return SourceClient(
        client_id=client_id,
        client_secret=SecretStr(secret) if secret else None,
        auth_method=answered,
        redirect_uri=redirect_uri,
        registered=True,
    )


class SourceOAuthClients:
    """The ``source_oauth_clients`` table, with this process's copy of each source's client.

    The copy is read when a source is (re)installed (:meth:`load`), so the synchronous
    provider lookups (``Pilot.oauth_provider``) find it; registering a client touches the
    source, so every process re-reads it on its next catalogue check.
    """

    def __init__(self, engine: AsyncEngine, cipher: CredentialCipher) -> None:
        self._engine = engine
        self._cipher = cipher
        self._cache: dict[str, SourceClient | None] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def cached(self, source_id: str) -> SourceClient | None:
        return self._cache.get(source_id)

    def lock(self, source_id: str) -> asyncio.Lock:
        return self._locks.setdefault(source_id, asyncio.Lock())

    async def load(self, source_id: str) -> SourceClient | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(clients_table).where(clients_table.c.source_id == source_id)
                )
            ).first()
        client = None if row is None else self._client(row)
        self._cache[source_id] = client
        return client

    async def save(self, source_id: str, client: SourceClient, *, replace: bool) -> SourceClient:
        """Store *client*; when another process stored one first (and not *replace*), that one."""
        sealed = (
            self._cipher.encrypt(
                client.client_secret.get_secret_value().encode(),
                associated_data=_AAD_PREFIX + source_id.encode(),
            )
            if client.client_secret is not None
            else None
        )
        values = {
            "source_id": source_id,
            "client_id": client.client_id,
            "sealed_secret": sealed,
            "auth_method": client.auth_method,
            "redirect_uri": client.redirect_uri,
            "registered": client.registered,
            "created_at": utcnow(),
        }
        try:
            async with self._engine.begin() as conn:
                if replace:
                    await conn.execute(
                        delete(clients_table).where(clients_table.c.source_id == source_id)
                    )
                await conn.execute(clients_table.insert().values(**values))
        except IntegrityError:
            stored = await self.load(source_id)
            if stored is not None:
                return stored
            raise
        self._cache[source_id] = client
        return client

    def _client(self, row: Any) -> SourceClient:
        secret = None
        if row.sealed_secret is not None:
            plain = self._cipher.decrypt(
                bytes(row.sealed_secret), associated_data=_AAD_PREFIX + str(row.source_id).encode()
            )
            secret = SecretStr(plain.decode())
        method = str(row.auth_method)
        return SourceClient(
            client_id=str(row.client_id),
            client_secret=secret,
            auth_method=method if method in CLIENT_AUTH_METHODS else "client_secret_basic",
            redirect_uri=row.redirect_uri,
            registered=bool(row.registered),
        )


def source_provider(
    name: str, oauth: Mapping[str, Any], client: SourceClient | None, settings: Settings
) -> OAuthProvider:
    """The OAuth provider *name* of an MCP source (client id "" until one is registered).

    ``BLOCKPILOT_PROVIDER_<NAME>_CLIENT_ID`` / ``_CLIENT_SECRET`` take precedence over the
    stored client.
    """
    client_id = settings.provider_value(name, "CLIENT_ID")
    secret = settings.provider_value(name, "CLIENT_SECRET")
    if client_id:
        method = choose_auth_method(oauth.get("token_auth_methods") or [], bool(secret))
    elif client is not None:
        client_id, method = client.client_id, client.auth_method
        secret = client.client_secret.get_secret_value() if client.client_secret else None
    else:
        client_id, method = "", "none"
    return OAuthProvider(
        name=name,
        client_id=client_id,
        client_secret=SecretStr(secret or ""),
        authorize_url=oauth["authorization_endpoint"],
        token_url=oauth["token_endpoint"],
        rotates_refresh_tokens=True,  # unknown servers: refreshed only under the shared lock
        resource=oauth.get("resource"),
        client_auth=method,
        scopes=tuple(oauth.get("scopes") or ()),
    )
