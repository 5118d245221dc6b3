"""OAuth2 providers: endpoints, client settings and the refresh-token grant."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pydantic import SecretStr, ValidationError

from blockpilot.credentials.models import OAuth2Credentials
from blockpilot.errors import (
    OAuthRefreshError,
    ReauthorizationRequiredError,
    TokenClientRefusedError,
    TokenEndpointError,
    TokenGrantRefusedError,
)
from blockpilot.oauth.token_endpoint import ClientAuthMethod, TokenClient, refresh_tokens
from blockpilot.provider_facts import provider_facts
from blockpilot.settings import Settings


@dataclass(frozen=True)
class OAuthProvider:
    """One configured OAuth2 app. Its endpoints are operator-set, hence trusted."""

    name: str
    client_id: str
    client_secret: SecretStr
    authorize_url: str
    token_url: str
    rotates_refresh_tokens: bool = True
    # RFC 8707 resource indicator sent on authorize and token requests (MCP servers).
    resource: str | None = None
    client_auth: ClientAuthMethod = "client_secret_post"
    # Scopes every login asks for (an MCP server's advertised scopes).
    scopes: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, name: str, settings: Settings) -> OAuthProvider | None:
        """The provider if its client id and secret are configured, else None."""
        client_id = settings.provider_value(name, "CLIENT_ID")
        client_secret = settings.provider_value(name, "CLIENT_SECRET")
        if not client_id or not client_secret:
            return None
        # Operators override the known endpoints with BLOCKPILOT_PROVIDER_<NAME>_*_URL.
        facts = provider_facts(name)
        authorize_url = settings.provider_value(name, "AUTHORIZE_URL") or facts.authorize_url
        token_url = settings.provider_value(name, "TOKEN_URL") or facts.token_url
        if not token_url:
            return None
        rotates = settings.provider_value(name, "ROTATES_REFRESH_TOKENS")
        if rotates is None:
            rotating = facts.rotates_refresh_tokens
        else:
            rotating = rotates.strip().lower() not in ("0", "false", "no", "off")
        return cls(name, client_id, SecretStr(client_secret), authorize_url, token_url, rotating)

    async def refresh(
        self, creds: OAuth2Credentials, *, timeout: float = 20.0
    ) -> OAuth2Credentials:
        """Exchange the refresh token; returns updated credentials (same id).

        The token endpoint is called through :mod:`blockpilot.oauth.token_endpoint`:
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
        try:
            issued = await refresh_tokens(
                self.token_url,
                self.token_client(),
                creds.refresh_token.get_secret_value(),
                resource=self.resource,
                name=self.name,
                timeout=timeout,
            )
        except TokenGrantRefusedError:
            raise ReauthorizationRequiredError(
                f"{self.name} refused the refresh token (invalid_grant); "
                "the user must reconnect the account"
            ) from None
        except TokenClientRefusedError as exc:
            # The operator's OAuth app is at fault, not the user's grant: reconnecting would not
            # help, so the stored tokens stay as they are.
            raise OAuthRefreshError(
                f"{self.name} rejected the OAuth app ({exc.error}); check BLOCKPILOT_PROVIDER_"
                f"{self.name.upper()}_CLIENT_ID and _CLIENT_SECRET"
            ) from None
        except TokenEndpointError as exc:
            raise OAuthRefreshError(
                f"{self.name} token refresh failed: {exc.message}; try again later",
                details={k: v for k, v in exc.details.items() if k in ("reason", "limit")},
            ) from None
        now = int(time.time())
        update = {
            "access_token": issued.access_token,
            "access_token_expires_at": now + issued.expires_in if issued.expires_in else None,
            # Providers that rotate refresh tokens return a new one; keep the old otherwise.
            "refresh_token": issued.refresh_token or creds.refresh_token,
            "scopes": issued.scopes if issued.scopes else creds.scopes,
        }
        try:
            # Validated like any stored credential, so what we store can always be read back.
            return OAuth2Credentials.model_validate({**dict(creds), **update})
        except ValidationError:
            raise OAuthRefreshError(
                f"{self.name} returned an invalid token response; try again later"
            ) from None

    def token_client(self) -> TokenClient:
        """How this app authenticates at its token endpoint."""
        secret = self.client_secret if self.client_secret.get_secret_value() else None
        return TokenClient(self.client_id, secret, self.client_auth)
