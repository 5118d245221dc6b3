"""The one client of OAuth2 token endpoints: code exchange and refresh (docs/oauth.md).

Connecting an account (:mod:`blockpilot.oauth.flow`), refreshing it
(:meth:`blockpilot.oauth.providers.OAuthProvider.refresh`) and the MCP servers' authorization
servers (:mod:`blockpilot.sources.mcp.oauth`) all send their token requests here:

* the request goes through :func:`blockpilot.oauth.http.call_endpoint` (no proxy from the
  environment, no redirects, the answer capped at 1 MiB, a deadline for the whole call);
* the client authenticates as its app registered: ``client_secret_post`` (id and secret in
  the form), ``client_secret_basic`` (HTTP Basic, RFC 6749 section 2.3.1) or ``none`` (a
  public client: its id only);
* the RFC 8707 ``resource`` is added when the caller names one;
* an error answer (RFC 6749 section 5.2) becomes a typed
  :class:`~blockpilot.errors.TokenEndpointError`, and a success answer is checked field by
  field before anything is stored.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from blockpilot.errors import (
    NetworkError,
    ResponseTooLargeError,
    TokenClientRefusedError,
    TokenEndpointUnavailableError,
    TokenGrantRefusedError,
    TokenRequestRefusedError,
    TokenResponseInvalidError,
)
from blockpilot.oauth.http import MAX_RESPONSE_BYTES, call_endpoint

ClientAuthMethod = Literal["client_secret_post", "client_secret_basic", "none"]
CLIENT_AUTH_METHODS: tuple[ClientAuthMethod, ...] = (
    "client_secret_post",
    "client_secret_basic",
    "none",
)
DEFAULT_TIMEOUT = 20.0
_ERROR_CODE = re.compile(r"^[a-z_]{1,40}$")
_MAX_LIFETIME = 10**10
# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]{1,200}$")
_MAX_SCOPES = 100


@dataclass(frozen=True, slots=True)
class TokenClient:
    """How an OAuth app authenticates at a token endpoint."""

    client_id: str
    client_secret: SecretStr | None = None
    auth_method: ClientAuthMethod = "client_secret_post"


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    """A checked success answer of a token endpoint (RFC 6749 section 5.1)."""

    access_token: SecretStr
    expires_in: int | None
    refresh_token: SecretStr | None
    refresh_token_expires_in: int | None
    scopes: list[str] | None  # None: the answer named no scope (the requested ones apply)


async def exchange_code(
    token_url: str,
    client: TokenClient,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
    resource: str | None = None,
    name: str = "the provider",
    timeout: float = DEFAULT_TIMEOUT,
) -> IssuedTokens:
    """The authorization-code grant with its PKCE verifier (RFC 6749 4.1.3, RFC 7636)."""
    form = {
        "grant_type": "authorization_code",
        "code": code[:4096],
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    return await request_tokens(
        token_url, client, form, resource=resource, name=name, timeout=timeout
    )


async def refresh_tokens(
    token_url: str,
    client: TokenClient,
    refresh_token: str,
    *,
    resource: str | None = None,
    name: str = "the provider",
    timeout: float = DEFAULT_TIMEOUT,
) -> IssuedTokens:
    """The refresh-token grant (RFC 6749 section 6)."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await request_tokens(
        token_url, client, form, resource=resource, name=name, timeout=timeout
    )


async def request_tokens(
    token_url: str,
    client: TokenClient,
    grant: Mapping[str, str],
    *,
    resource: str | None = None,
    name: str = "the provider",
    timeout: float = DEFAULT_TIMEOUT,
) -> IssuedTokens:
    """POST *grant* to *token_url* as *client*; the checked tokens.

    Raises:
        TokenGrantRefusedError: ``invalid_grant``.
        TokenClientRefusedError: ``invalid_client`` or ``unauthorized_client``.
        TokenRequestRefusedError: any other error code, or a 4xx without one.
        TokenEndpointUnavailableError: not reached, a 5xx/429 without an error code, or an
            answer over :data:`~blockpilot.oauth.http.MAX_RESPONSE_BYTES`.
        TokenResponseInvalidError: a success answer without a usable access token.
    """
    form = dict(grant)
    headers = {"Accept": "application/json"}
    if resource:
        form["resource"] = resource
    if client.auth_method == "client_secret_basic":
        secret = client.client_secret.get_secret_value() if client.client_secret else ""
        # RFC 6749 section 2.3.1: both parts form-urlencoded before base64.
        pair = f"{quote(client.client_id, safe='')}:{quote(secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        form["client_id"] = client.client_id
        if client.auth_method == "client_secret_post" and client.client_secret is not None:
            form["client_secret"] = client.client_secret.get_secret_value()
    try:
        response = await call_endpoint(
            "POST", token_url, timeout=timeout, data=form, headers=headers
        )
    except ResponseTooLargeError:
        raise TokenEndpointUnavailableError(
            f"{name} sent a token response larger than {MAX_RESPONSE_BYTES} bytes",
            details={"reason": "response_too_large", "limit": MAX_RESPONSE_BYTES},
        ) from None
    except (httpx.HTTPError, NetworkError) as exc:
        raise TokenEndpointUnavailableError(
            f"Could not reach {name}'s token endpoint ({type(exc).__name__})",
            details={"reason": "unreachable"},
        ) from None
    # JSON, or form-encoded (GitHub without ``Accept``).
    payload = response.token_payload()
    status = response.status_code
    error = payload.get("error")
    if error is not None or status >= 400:
        raise _refusal(name, status, error)
    return _issued(name, status, payload)


def _refusal(name: str, status: int, error: Any) -> Exception:
    code = str(error) if isinstance(error, str) and _ERROR_CODE.match(error) else None
    if code == "invalid_grant":
        return TokenGrantRefusedError(
            f"{name} refused the grant (invalid_grant)", error=code, status=status
        )
    if code in ("invalid_client", "unauthorized_client"):
        return TokenClientRefusedError(
            f"{name} rejected the OAuth app ({code})", error=code, status=status
        )
    if code is None and (status >= 500 or status == 429):
        return TokenEndpointUnavailableError(
            f"{name}'s token endpoint answered HTTP {status}", status=status
        )
    shown = code or f"HTTP {status}"
    return TokenRequestRefusedError(
        f"{name} refused the token request ({shown})", error=code, status=status
    )


def _issued(name: str, status: int, payload: Mapping[str, Any]) -> IssuedTokens:
    def invalid(field: str) -> TokenResponseInvalidError:
        return TokenResponseInvalidError(
            f"{name} returned an invalid token response ({field})",
            status=status,
            details={"field": field},
        )

    access_token = payload.get("access_token")
    if not isinstance(access_token, str) or not access_token.strip():
        raise invalid("access_token")
    token_type = payload.get("token_type")
    if token_type is not None and str(token_type).lower() != "bearer":
        raise invalid("token_type")
    refresh_token = payload.get("refresh_token")
    if refresh_token is not None and (
        not isinstance(refresh_token, str) or not refresh_token.strip()
    ):
        raise invalid("refresh_token")
    lifetimes: dict[str, int | None] = {}
    for field in ("expires_in", "refresh_token_expires_in"):
        try:
            lifetimes[field] = lifetime(payload.get(field))
        except ValueError:
            raise invalid(field) from None
    scope = payload.get("scope")
    scopes: list[str] | None = None
    if scope not in (None, ""):
        if not isinstance(scope, str):
            raise invalid("scope")
        # Some providers separate scopes with commas (Slack, GitHub's form answer).
        scopes = list(dict.fromkeys(scope.replace(",", " ").split()))
        if len(scopes) > _MAX_SCOPES or not all(_SCOPE_TOKEN.match(s) for s in scopes):
            raise invalid("scope")
    return IssuedTokens(
        access_token=SecretStr(access_token),
        expires_in=lifetimes["expires_in"],
        refresh_token=SecretStr(refresh_token) if refresh_token else None,
        refresh_token_expires_in=lifetimes["refresh_token_expires_in"],
        scopes=scopes,
    )


def lifetime(value: Any) -> int | None:
    """Seconds from an ``expires_in``-like field (some providers send a string); None if absent.

    Raises:
        ValueError: not a whole, non-negative number of seconds below 10**10.
    """
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_LIFETIME:
        raise ValueError("bad lifetime")
    return value
