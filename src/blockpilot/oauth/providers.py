"""OAuth2 providers: endpoints, client settings and the refresh-token grant."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr, ValidationError

from blockpilot.credentials.models import OAuth2Credentials
from blockpilot.errors import (
    NetworkError,
    OAuthRefreshError,
    ReauthorizationRequiredError,
    ResponseTooLargeError,
)
from blockpilot.oauth.http import MAX_RESPONSE_BYTES, call_endpoint
from blockpilot.settings import Settings

# Public endpoints of providers we know; operators can override any of them with
# BLOCKPILOT_PROVIDER_<NAME>_AUTHORIZE_URL / _TOKEN_URL.
KNOWN_ENDPOINTS: dict[str, tuple[str, str]] = {
    "github": (
        "https://github.com/login/oauth/authorize",
        "https://github.com/login/oauth/access_token",
    ),
    "google": (
        "https://accounts.google.com/o/oauth2/v2/auth",
        "https://oauth2.googleapis.com/token",
    ),
    "notion": (
        "https://api.notion.com/v1/oauth/authorize",
        "https://api.notion.com/v1/oauth/token",
    ),
    "linear": (
        "https://linear.app/oauth/authorize",
        "https://api.linear.app/oauth/token",
    ),
    "hubspot": (
        "https://app.hubspot.com/oauth/authorize",
        "https://api.hubapi.com/oauth/v1/token",
    ),
    "slack": (
        "https://slack.com/oauth/v2/authorize",
        "https://slack.com/api/oauth.v2.access",
    ),
    "todoist": (
        "https://todoist.com/oauth/authorize",
        "https://todoist.com/oauth/access_token",
    ),
    "airtable": (
        "https://airtable.com/oauth2/v1/authorize",
        "https://airtable.com/oauth2/v1/token",
    ),
}


# Providers known to keep a refresh token valid after use. Any other provider is assumed to
# rotate refresh tokens (spent on first use, reuse may revoke the grant), so it is never
# refreshed without the shared lock; BLOCKPILOT_PROVIDER_<NAME>_ROTATES_REFRESH_TOKENS=false
# says otherwise for one provider.
STATIC_REFRESH_TOKEN_PROVIDERS = frozenset({"google", "hubspot"})


@dataclass(frozen=True)
class OAuthProvider:
    """One configured OAuth2 app. Its endpoints are operator-set, hence trusted."""

    name: str
    client_id: str
    client_secret: SecretStr
    authorize_url: str
    token_url: str
    rotates_refresh_tokens: bool = True

    @classmethod
    def from_settings(cls, name: str, settings: Settings) -> OAuthProvider | None:
        """The provider if its client id and secret are configured, else None."""
        client_id = settings.provider_value(name, "CLIENT_ID")
        client_secret = settings.provider_value(name, "CLIENT_SECRET")
        if not client_id or not client_secret:
            return None
        default_authorize, default_token = KNOWN_ENDPOINTS.get(name, ("", ""))
        authorize_url = settings.provider_value(name, "AUTHORIZE_URL") or default_authorize
        token_url = settings.provider_value(name, "TOKEN_URL") or default_token
        if not token_url:
            return None
        rotates = settings.provider_value(name, "ROTATES_REFRESH_TOKENS")
        if rotates is None:
            rotating = name not in STATIC_REFRESH_TOKEN_PROVIDERS
        else:
            rotating = rotates.strip().lower() not in ("0", "false", "no", "off")
        return cls(name, client_id, SecretStr(client_secret), authorize_url, token_url, rotating)

    async def refresh(
        self, creds: OAuth2Credentials, *, timeout: float = 20.0
    ) -> OAuth2Credentials:
        """Exchange the refresh token; returns updated credentials (same id).

        The token endpoint is called through :func:`blockpilot.oauth.http.call_endpoint`:
        no proxy from the environment, the answer capped at 1 MiB, *timeout* per operation
        and for the whole call.

        Raises:
            ReauthorizationRequiredError: the provider refused the grant (``invalid_grant``).
            OAuthRefreshError: a transient failure (network, 429, 5xx, an answer over 1 MiB);
                nothing changed.
        """
        if creds.refresh_token is None:
            raise ReauthorizationRequiredError(
                f"The {self.name} connection has expired and has no refresh token; "
                "reconnect the account"
            )
        form = {
            "grant_type": "refresh_token",
            "refresh_token": creds.refresh_token.get_secret_value(),
            "client_id": self.client_id,
            "client_secret": self.client_secret.get_secret_value(),
        }
        try:
            response = await call_endpoint(
                "POST",
                self.token_url,
                timeout=timeout,
                data=form,
                headers={"Accept": "application/json"},
            )
        except ResponseTooLargeError:
            raise OAuthRefreshError(
                f"{self.name} sent a token response larger than {MAX_RESPONSE_BYTES} bytes; "
                "try again later",
                details={"reason": "response_too_large", "limit": MAX_RESPONSE_BYTES},
            ) from None
        except (httpx.HTTPError, NetworkError) as exc:
            raise OAuthRefreshError(
                f"Could not reach {self.name} to refresh the token ({type(exc).__name__})"
            ) from None
        payload = response.json_object() or {}
        error = payload.get("error")
        if error == "invalid_grant":
            raise ReauthorizationRequiredError(
                f"{self.name} refused the refresh token ({error}); "
                "the user must reconnect the account"
            )
        if error in ("invalid_client", "unauthorized_client"):
            # The operator's OAuth app is at fault, not the user's grant: reconnecting would not
            # help, so the stored tokens stay as they are.
            raise OAuthRefreshError(
                f"{self.name} rejected the OAuth app ({error}); check BLOCKPILOT_PROVIDER_"
                f"{self.name.upper()}_CLIENT_ID and _CLIENT_SECRET"
            )
        if response.status_code >= 400 or "access_token" not in payload:
            raise OAuthRefreshError(
                f"{self.name} token refresh failed with HTTP {response.status_code}; "
                "try again later"
            )
        access_token = payload.get("access_token")
        expires_in = payload.get("expires_in")
        new_refresh = payload.get("refresh_token")
        scope = payload.get("scope")
        if (
            not isinstance(access_token, str)
            or not access_token.strip()
            or not _valid_expires_in(expires_in)
            or not (new_refresh is None or (isinstance(new_refresh, str) and new_refresh.strip()))
        ):
            # Storing a malformed answer would break the credential; keep what we have.
            raise OAuthRefreshError(
                f"{self.name} returned an invalid token response; try again later"
            )
        now = int(time.time())
        update = {
            "access_token": SecretStr(access_token),
            "access_token_expires_at": now + int(expires_in) if expires_in else None,
            # Providers that rotate refresh tokens return a new one; keep the old otherwise.
            "refresh_token": SecretStr(str(new_refresh)) if new_refresh else creds.refresh_token,
            "scopes": scope.replace(",", " ").split()
            if isinstance(scope, str) and scope
            else creds.scopes,
        }
        try:
            # Validated like any stored credential, so what we store can always be read back.
            return OAuth2Credentials.model_validate({**dict(creds), **update})
        except ValidationError:
            raise OAuthRefreshError(
                f"{self.name} returned an invalid token response; try again later"
            ) from None


def _valid_expires_in(value: Any) -> bool:
    """``expires_in`` is absent, or a whole number of seconds (some providers send a string)."""
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        value = value.strip()
        return value.isdigit() and int(value) < 10**10
    return isinstance(value, int) and 0 <= value < 10**10
