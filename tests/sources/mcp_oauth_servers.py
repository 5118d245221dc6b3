"""An MCP server that requires OAuth, and its authorization server, for the tests.

* The **authorization server** is the ``mcp`` SDK's own (``mcp.server.auth``: RFC 8414
  metadata, dynamic client registration, authorize with PKCE, token with refresh) on its own
  port, backed by :class:`MemoryAuthServer`, which auto-approves as the account the test
  signs in (:attr:`MemoryAuthServer.signed_in`) and counts every grant.
* The **MCP server** is the notes server of :mod:`tests.sources.mcp_servers` behind a guard
  that publishes protected-resource metadata (RFC 9728), answers 401 with
  ``WWW-Authenticate: Bearer resource_metadata=…``, refuses ``snapshot`` with a 403
  ``insufficient_scope`` to a token without ``notes:images``, and records for every JSON-RPC
  request which account's token carried it, and the token itself.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    construct_redirect_uri,
)
from mcp.server.auth.routes import create_auth_routes
from mcp.server.auth.settings import ClientRegistrationOptions
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl
from starlette.applications import Starlette

from .mcp_servers import _CURRENT, Seen, notes_server

SCOPES = ["notes:read", "notes:images"]


@dataclass
class MemoryAuthServer:
    """The SDK's ``OAuthAuthorizationServerProvider`` in memory, auto-approving."""

    signed_in: str = "nobody"  # the account that "logs in" at /authorize
    scopes: list[str] = field(default_factory=lambda: ["notes:read"])  # what consent grants
    token_seconds: int = 3600
    clients: dict[str, OAuthClientInformationFull] = field(default_factory=dict)
    codes: dict[str, tuple[AuthorizationCode, str]] = field(default_factory=dict)
    access: dict[str, tuple[AccessToken, str]] = field(default_factory=dict)  # token → (…, user)
    refresh: dict[str, tuple[RefreshToken, str]] = field(default_factory=dict)
    refreshes: int = 0  # refresh grants answered with new tokens
    exchanges: int = 0
    refuse_refresh: bool = False

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        self.clients[client_info.client_id] = client_info

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        code = AuthorizationCode(
            code=secrets.token_urlsafe(24),
            scopes=params.scopes or [],
            expires_at=time.time() + 300,
            client_id=client.client_id or "",
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
            subject=self.signed_in,
        )
        self.codes[code.code] = (code, self.signed_in)
        return construct_redirect_uri(str(params.redirect_uri), code=code.code, state=params.state)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        found = self.codes.get(authorization_code)
        return found[0] if found else None

    def _issue(
        self, client_id: str, user: str, scopes: list[str], resource: str | None
    ) -> OAuthToken:
        token, refresh = f"at-{user}-{secrets.token_hex(8)}", f"rt-{user}-{secrets.token_hex(8)}"
        expires = int(time.time()) + self.token_seconds
        self.access[token] = (
            AccessToken(token=token, client_id=client_id, scopes=scopes, expires_at=expires,
                        resource=resource, subject=user),
            user,
        )  # fmt: skip
        self.refresh[refresh] = (
            RefreshToken(token=refresh, client_id=client_id, scopes=scopes, resource=resource,
                         subject=user),
            user,
        )  # fmt: skip
        return OAuthToken(
            access_token=token,
            expires_in=self.token_seconds,
            scope=" ".join(scopes),
            refresh_token=refresh,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        _, user = self.codes.pop(authorization_code.code)
        self.exchanges += 1
        granted = [s for s in (authorization_code.scopes or self.scopes) if s in self.scopes]
        return self._issue(client.client_id or "", user, granted, authorization_code.resource)

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        if self.refuse_refresh:
            return None  # the SDK answers invalid_grant
        found = self.refresh.get(refresh_token)
        return found[0] if found and found[0].client_id == client.client_id else None

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        _, user = self.refresh.pop(refresh_token.token)  # rotated: a refresh token works once
        self.refreshes += 1
        return self._issue(
            client.client_id or "", user, scopes or refresh_token.scopes, refresh_token.resource
        )

    async def load_access_token(self, token: str) -> AccessToken | None:
        found = self.access.get(token)
        if found is None or (found[0].expires_at or 0) < time.time():
            return None
        return found[0]

    async def revoke_token(self, token: Any) -> None:
        self.access.pop(getattr(token, "token", ""), None)

    def revoke_user(self, user: str) -> None:
        """Forget every access token of *user* (their next call gets a 401)."""
        for token in [t for t, (_, who) in self.access.items() if who == user]:
            del self.access[token]

    def user_of(self, token: str) -> str | None:
        found = self.access.get(token)
        return found[1] if found else None


@dataclass
class OAuthUpstream:
    mcp_url: str
    issuer: str
    auth: MemoryAuthServer
    seen: Seen
    tokens_seen: list[str] = field(default_factory=list)  # every bearer token the MCP server got
    as_requests: list[dict[str, Any]] = field(default_factory=list)  # (path, headers) at the AS


async def _send(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def oauth_guard(app: Any, up: OAuthUpstream) -> Any:
    """ASGI wrapper of the MCP app: PRM, 401/403 challenges, and the record of who called."""
    prm_path = "/.well-known/oauth-protected-resource/mcp"
    prm_url = up.mcp_url.rsplit("/mcp", 1)[0] + prm_path

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if scope["path"] == prm_path:
            doc = {"resource": up.mcp_url, "authorization_servers": [up.issuer],
                   "scopes_supported": SCOPES, "bearer_methods_supported": ["header"]}  # fmt: skip
            await _send(
                send, 200, json.dumps(doc).encode(), [(b"content-type", b"application/json")]
            )
            return
        auth = dict(scope["headers"]).get(b"authorization", b"").decode()
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        found = await up.auth.load_access_token(token) if token else None
        if token:
            up.tokens_seen.append(token)
        if found is None:
            up.seen.refused += 1
            challenge = f'Bearer error="invalid_token", resource_metadata="{prm_url}"'
            await _send(send, 401, b"", [(b"www-authenticate", challenge.encode())])
            return
        user = up.auth.user_of(token) or "?"
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        request: dict[str, Any] = {}
        if scope["method"] == "POST":
            try:
                request = json.loads(body)
            except ValueError:
                request = {}
            up.seen.calls.append((user, str(request.get("method", "?"))))
        tool = (request.get("params") or {}).get("name") if isinstance(request, dict) else None
        if tool == "snapshot" and "notes:images" not in found.scopes:
            challenge = (
                f'Bearer error="insufficient_scope", scope="notes:images", '
                f'resource_metadata="{prm_url}"'
            )
            await _send(send, 403, b"", [(b"www-authenticate", challenge.encode())])
            return
        _CURRENT["user"] = user
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, replay, send)

    return guarded


def recording(app: Any, up: OAuthUpstream) -> Any:
    async def recorded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            up.as_requests.append({"path": scope["path"], "headers": headers})
        await app(scope, receive, send)

    return recorded


@asynccontextmanager
async def _serve_on(app: Any, sock: socket.socket) -> AsyncIterator[None]:
    import asyncio

    import uvicorn

    from blockpilot.api.server import server_config

    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(server_config(app, host=host, port=port))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(15):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        sock.close()


def _bound() -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@asynccontextmanager
async def oauth_mcp_server(*, registration: bool = True) -> AsyncIterator[OAuthUpstream]:
    """The notes MCP server behind OAuth, and its authorization server (each on a port)."""
    as_sock, issuer = _bound()
    mcp_sock, mcp_base = _bound()
    up = OAuthUpstream(mcp_base + "/mcp", issuer, MemoryAuthServer(), Seen())
    routes = create_auth_routes(
        up.auth,
        issuer_url=AnyHttpUrl(issuer),
        client_registration_options=ClientRegistrationOptions(
            enabled=registration, valid_scopes=SCOPES, default_scopes=["notes:read"]
        ),
    )
    as_app = recording(Starlette(routes=routes), up)
    server = up.seen.server = notes_server(up.seen)
    mcp_app = oauth_guard(server.streamable_http_app(), up)
    async with _serve_on(as_app, as_sock), _serve_on(mcp_app, mcp_sock):
        yield up
