"""A fake OAuth2 authorization server: authorize, token (PKCE, refresh), userinfo."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote_plus, urlencode, urlsplit

from ._http import (
    LOCALHOST,
    LocalHTTPServer,
    RecordedRequest,
    Response,
    _bearer_token,
)

# --------------------------------------------------------------------------------------
# OAuth2 authorization server
# --------------------------------------------------------------------------------------


def pkce_challenge(verifier: str) -> str:
    """The S256 PKCE code challenge for ``verifier`` (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_pair() -> tuple[str, str]:
    """A fresh ``(code_verifier, code_challenge)`` pair using S256."""
    verifier = secrets.token_urlsafe(48)
    return verifier, pkce_challenge(verifier)


_VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


@dataclass
class _OAuthClient:
    client_id: str
    client_secret: str | None
    redirect_uris: tuple[str, ...] | None


@dataclass
class _AuthCode:
    client_id: str
    redirect_uri: str
    code_challenge: str | None
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class _TokenRecord:
    client_id: str
    scope: str
    expires_at: float


@dataclass
class _Failure:
    status: int
    error: str


class FakeOAuthProvider(LocalHTTPServer):
    """An OAuth2 authorization server with an auto-approving consent screen.

    * ``GET /authorize`` validates ``client_id``, ``redirect_uri``, ``response_type=code``,
      ``state`` and PKCE (``code_challenge`` + ``code_challenge_method=S256``), then
      302-redirects to ``redirect_uri?code=...&state=...``.
    * ``POST /token`` (form-encoded; client auth via HTTP Basic or
      ``client_secret_post``) supports ``authorization_code`` (single-use code,
      ``redirect_uri`` and PKCE verifier checked) and ``refresh_token`` grants.
    * ``GET /userinfo`` (Bearer access token) and
      ``GET /.well-known/oauth-authorization-server`` (metadata).

    ``scopes=None`` grants what was requested; otherwise exactly ``scopes`` is granted.
    ``rotate_refresh_tokens``, ``expires_in``, ``refresh_delay`` and ``scopes`` are plain
    attributes and may be changed while the server runs.
    """

    def __init__(
        self,
        *,
        client_id: str = "test-client",
        client_secret: str | None = "test-secret",
        redirect_uris: Iterable[str] | None = None,
        scopes: Iterable[str] | None = None,
        expires_in: int = 3600,
        rotate_refresh_tokens: bool = False,
        refresh_delay: float = 0.0,
        require_pkce: bool = True,
        login: str = "octocat",
        email: str = "octocat@example.com",
        host: str = LOCALHOST,
    ) -> None:
        super().__init__(host=host)
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes: list[str] | None = list(scopes) if scopes is not None else None
        self.expires_in = expires_in
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.refresh_delay = refresh_delay
        self.require_pkce = require_pkce
        self.login = login
        self.email = email
        self._clients: dict[str, _OAuthClient] = {}
        self._codes: dict[str, _AuthCode] = {}
        self._access: dict[str, _TokenRecord] = {}
        self._refresh: dict[str, _TokenRecord] = {}  # expires_at unused here
        self._failures: deque[_Failure] = deque()
        self._deny: deque[str] = deque()
        self._refresh_count = 0
        self._token_requests = 0
        self._client_auth_methods: list[str] = []
        self.add_client(client_id, client_secret, redirect_uris)
        self.add_route("GET", "/authorize", self._authorize)
        self.add_route("POST", "/token", self._token)
        self.add_route("GET", "/userinfo", self._userinfo)
        self.add_route("GET", "/.well-known/oauth-authorization-server", self._metadata)

    # -- configuration --------------------------------------------------------------

    def add_client(
        self,
        client_id: str,
        client_secret: str | None = None,
        redirect_uris: Iterable[str] | None = None,
    ) -> None:
        """Register a client; ``client_secret=None`` makes it a public (PKCE-only) client
        and ``redirect_uris=None`` accepts any http(s) redirect URI."""
        uris = tuple(redirect_uris) if redirect_uris is not None else None
        with self._lock:
            self._clients[client_id] = _OAuthClient(client_id, client_secret, uris)

    def fail_next_refresh(
        self, status: int | None = None, error: str | None = None, *, times: int = 1
    ) -> None:
        """Make the next ``times`` refresh requests fail without touching any token.

        ``fail_next_refresh()`` -> 503 ``temporarily_unavailable``;
        ``fail_next_refresh(error="invalid_grant")`` -> 400 ``invalid_grant``;
        ``fail_next_refresh(status=500)`` -> 500 ``server_error``.
        """
        if status is None:
            status = 400 if error is not None else 503
        if error is None:
            error = (
                "temporarily_unavailable"
                if status == 503
                else ("server_error" if status >= 500 else "invalid_request")
            )
        with self._lock:
            self._failures.extend(_Failure(status, error) for _ in range(times))

    def deny_next_authorization(self, error: str = "access_denied") -> None:
        """The next ``/authorize`` redirects back with ``error=...`` instead of a code."""
        with self._lock:
            self._deny.append(error)

    def issue_tokens(
        self,
        scopes: Iterable[str] | None = None,
        expires_in: int | None = None,
        *,
        client_id: str | None = None,
    ) -> dict[str, Any]:
        """Mint a valid access/refresh token pair directly (for seeding credentials)."""
        scope = " ".join(scopes) if scopes is not None else " ".join(self.scopes or ())
        return self._mint(client_id or self.client_id, scope, expires_in)

    def revoke_refresh_token(self, refresh_token: str) -> None:
        """Invalidate a refresh token (as if the user revoked the grant)."""
        with self._lock:
            self._refresh.pop(refresh_token, None)

    def access_token_valid(self, access_token: str) -> bool:
        with self._lock:
            info = self._access.get(access_token)
            return info is not None and info.expires_at > time.time()

    def refresh_token_valid(self, refresh_token: str) -> bool:
        with self._lock:
            return refresh_token in self._refresh

    # -- counters / URLs ------------------------------------------------------------

    @property
    def refresh_count(self) -> int:
        """Number of ``grant_type=refresh_token`` requests received (incl. failed)."""
        with self._lock:
            return self._refresh_count

    @property
    def token_requests(self) -> int:
        """Number of ``POST /token`` requests received (any grant, incl. failed)."""
        with self._lock:
            return self._token_requests

    @property
    def client_auth_methods(self) -> list[str]:
        """Per successful client authentication at ``/token``: ``client_secret_basic``,
        ``client_secret_post`` or ``none``."""
        with self._lock:
            return list(self._client_auth_methods)

    @property
    def authorize_url(self) -> str:
        return self.url("/authorize")

    @property
    def token_url(self) -> str:
        return self.url("/token")

    @property
    def userinfo_url(self) -> str:
        return self.url("/userinfo")

    def reset(self) -> None:
        """Also zeroes the counters and drops pending injected failures/denials.
        Clients and issued tokens stay valid."""
        with self._lock:
            super().reset()
            self._failures.clear()
            self._deny.clear()
            self._refresh_count = 0
            self._token_requests = 0
            self._client_auth_methods.clear()

    # -- internals ------------------------------------------------------------------

    def _mint(
        self, client_id: str, scope: str, expires_in: int | None, refresh: str | None = None
    ) -> dict[str, Any]:
        lifetime = self.expires_in if expires_in is None else expires_in
        access = "at_" + secrets.token_urlsafe(24)
        refresh_token = refresh or "rt_" + secrets.token_urlsafe(24)
        with self._lock:
            self._access[access] = _TokenRecord(client_id, scope, time.time() + lifetime)
            self._refresh[refresh_token] = _TokenRecord(client_id, scope, 0.0)
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": lifetime,
            "refresh_token": refresh_token,
            "scope": scope,
        }

    def _granted_scope(self, requested: str | None) -> str:
        if self.scopes is not None:
            return " ".join(self.scopes)
        return " ".join((requested or "").split())

    @staticmethod
    def _oauth_error(
        error: str,
        description: str | None = None,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        body = {"error": error}
        if description:
            body["error_description"] = description
        merged = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        merged.update(headers or {})
        return Response.json(body, status=status, headers=merged)

    @staticmethod
    def _with_params(uri: str, params: Mapping[str, str]) -> str:
        return uri + ("&" if "?" in uri else "?") + urlencode(params)

    def _authorize(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        q = request.query
        with self._lock:
            client = self._clients.get(q.get("client_id", ""))
        if client is None:
            return self._oauth_error("invalid_client", "unknown client_id", 400)
        redirect_uri = q.get("redirect_uri", "")
        if client.redirect_uris is None:
            valid_redirect = urlsplit(redirect_uri).scheme in ("http", "https")
        else:
            valid_redirect = redirect_uri in client.redirect_uris
        if not valid_redirect:
            return self._oauth_error("invalid_request", "invalid redirect_uri", 400)

        state = q.get("state")

        def back(**values: str) -> Response:
            out = dict(values)
            if state is not None:
                out["state"] = state
            return Response.redirect(self._with_params(redirect_uri, out))

        with self._lock:
            denial = self._deny.popleft() if self._deny else None
        if denial is not None:
            return back(error=denial, error_description="the user denied the request")
        if q.get("response_type") != "code":
            return back(error="unsupported_response_type")
        if not state:
            return back(error="invalid_request", error_description="state is required")
        challenge = q.get("code_challenge")
        method = q.get("code_challenge_method")
        if challenge is None and self.require_pkce:
            return back(error="invalid_request", error_description="code_challenge required")
        if challenge is not None and method != "S256":
            return back(
                error="invalid_request",
                error_description="code_challenge_method must be S256",
            )
        code = "code_" + secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _AuthCode(
                client_id=client.client_id,
                redirect_uri=redirect_uri,
                code_challenge=challenge,
                scope=self._granted_scope(q.get("scope")),
                expires_at=time.time() + 600,
            )
        return back(code=code)

    def _authenticate_client(
        self, request: RecordedRequest, form: dict[str, str]
    ) -> tuple[_OAuthClient | None, Response | None]:
        header = request.header("authorization") or ""
        scheme, _, encoded = header.partition(" ")
        secret: str | None
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                decoded = ""
            raw_id, sep, raw_secret = decoded.partition(":")
            if not sep:
                return None, self._invalid_client(basic=True)
            client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
            method = "client_secret_basic"
        elif "client_id" in form:
            client_id, secret = form["client_id"], form.get("client_secret")
            method = "client_secret_post" if secret is not None else "none"
        else:
            return None, self._invalid_client(basic=False)
        with self._lock:
            client = self._clients.get(client_id)
        if client is None:
            return None, self._invalid_client(basic=method == "client_secret_basic")
        if client.client_secret is not None and not hmac.compare_digest(
            (secret or "").encode(), client.client_secret.encode()
        ):
            return None, self._invalid_client(basic=method == "client_secret_basic")
        with self._lock:
            self._client_auth_methods.append(method)
        return client, None

    def _invalid_client(self, *, basic: bool) -> Response:
        headers = {"WWW-Authenticate": 'Basic realm="oauth"'} if basic else None
        return self._oauth_error("invalid_client", "client authentication failed", 401, headers)

    def _token(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        with self._lock:
            self._token_requests += 1
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return self._oauth_error("invalid_request", "body must be form-encoded")
        form = request.form()
        grant_type = form.get("grant_type")
        if grant_type == "refresh_token":
            with self._lock:
                self._refresh_count += 1
        client, error = self._authenticate_client(request, form)
        if grant_type == "authorization_code":
            response = error or self._code_grant(cast(_OAuthClient, client), form)
        elif grant_type == "refresh_token":
            response = error or self._refresh_grant(cast(_OAuthClient, client), form)
            self._sleep(self.refresh_delay)
        else:
            response = error or self._oauth_error("unsupported_grant_type")
        return response

    def _token_response(self, tokens: dict[str, Any]) -> Response:
        return Response.json(tokens, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _code_grant(self, client: _OAuthClient, form: dict[str, str]) -> Response:
        now = time.time()
        with self._lock:
            record = self._codes.get(form.get("code", ""))
            if record is None or record.client_id != client.client_id:
                return self._oauth_error("invalid_grant", "unknown authorization code")
            if record.used:
                return self._oauth_error("invalid_grant", "authorization code already used")
            record.used = True
        if record.expires_at < now:
            return self._oauth_error("invalid_grant", "authorization code expired")
        if form.get("redirect_uri") != record.redirect_uri:
            return self._oauth_error("invalid_grant", "redirect_uri mismatch")
        if record.code_challenge is not None:
            verifier = form.get("code_verifier")
            if verifier is None:
                return self._oauth_error("invalid_request", "code_verifier required")
            if not _VERIFIER_RE.match(verifier) or not hmac.compare_digest(
                pkce_challenge(verifier), record.code_challenge
            ):
                return self._oauth_error("invalid_grant", "PKCE verification failed")
        return self._token_response(self._mint(client.client_id, record.scope, None))

    def _refresh_grant(self, client: _OAuthClient, form: dict[str, str]) -> Response:
        with self._lock:
            if self._failures:
                failure = self._failures.popleft()
                return self._oauth_error(failure.error, "injected failure", failure.status)
            old = form.get("refresh_token", "")
            record = self._refresh.get(old)
            if record is None or record.client_id != client.client_id:
                return self._oauth_error("invalid_grant", "invalid refresh token")
            scope = record.scope
            if form.get("scope"):
                requested = form["scope"].split()
                if not set(requested) <= set(scope.split()):
                    return self._oauth_error("invalid_scope", "scope exceeds the grant")
                scope = " ".join(requested)
            if self.rotate_refresh_tokens:
                del self._refresh[old]
                tokens = self._mint(client.client_id, scope, None)
            else:
                tokens = self._mint(client.client_id, scope, None, refresh=old)
                # keep the original grant's scope on the long-lived refresh token
                self._refresh[old] = record
        return self._token_response(tokens)

    def _userinfo(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        token = _bearer_token(request)
        if token is None or not self.access_token_valid(token):
            return Response.json(
                {"error": "invalid_token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return Response.json({"sub": self.login, "login": self.login, "email": self.email})

    def _metadata(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        return Response.json(
            {
                "issuer": self.origin,
                "authorization_endpoint": self.authorize_url,
                "token_endpoint": self.token_url,
                "userinfo_endpoint": self.userinfo_url,
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                    "none",
                ],
            }
        )
