"""The OAuth2 connect flow: authorization code with PKCE (S256), ending in stored tokens.

1. :meth:`OAuthFlow.start` issues a single-use state (:mod:`blockpilot.oauth.state`) bound to
   the user, the provider and a PKCE verifier, and builds the provider's authorization URL.
2. The browser comes back to the callback; :meth:`OAuthFlow.finish` consumes the state,
   exchanges the code at the provider's token URL (operator-set, hence trusted: no SSRF
   guard, but no proxy from the environment and a capped answer, see
   :mod:`blockpilot.oauth.http`) with the verifier, and *parks* the tokens as a pending flow
   (:mod:`blockpilot.oauth.pending`): the browser that came back may not be the user's.
3. :meth:`OAuthFlow.complete` stores the parked tokens as an encrypted ``oauth2`` credential,
   only when the user who verifies the flow is the one who started it (a browser session of
   that user, or the host application's user verifier; see ``docs/oauth.md``).

Refreshing the stored tokens later is the job of
:class:`~blockpilot.credentials.manager.IntegrationCredentialsManager` (docs/architecture.md,
credential resolution); this module only connects accounts.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from pydantic import ValidationError

from blockpilot.credentials.matching import provider_display_name
from blockpilot.credentials.models import CredentialsMeta, OAuth2Credentials
from blockpilot.errors import (
    InvalidInputError,
    NetworkError,
    OAuthCallbackError,
    OAuthFlowNotFoundError,
    OAuthStateError,
    OAuthUserMismatchError,
    ProviderNotConfiguredError,
    TokenEndpointError,
    TokenEndpointUnavailableError,
    TokenResponseInvalidError,
)
from blockpilot.oauth.http import call_endpoint
from blockpilot.oauth.pending import PendingFlow, PendingFlowStore
from blockpilot.oauth.providers import OAuthProvider
from blockpilot.oauth.state import OAuthStateStore, PendingLogin, pkce_s256
from blockpilot.oauth.token_endpoint import IssuedTokens, exchange_code
from blockpilot.provider_facts import PROVIDERS, provider_facts
from blockpilot.settings import Settings
from blockpilot.storage.credentials import CredentialStore

logger = logging.getLogger(__name__)

PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]{1,200}$")
MAX_SCOPES = 30

_USERNAME_FIELDS = ("login", "preferred_username", "email", "username", "name")

# Error codes a provider may send back to the callback (RFC 6749 §4.1.2.1), in words.
_PROVIDER_ERRORS = {
    "access_denied": "access was declined on the provider's page",
    "invalid_scope": "the provider does not allow the requested permissions",
    "unauthorized_client": "the provider does not allow this service's app to connect accounts",
    "invalid_request": "the provider rejected the request",
    "unsupported_response_type": "the provider rejected the request",
    "server_error": "the provider had an internal error",
    "temporarily_unavailable": "the provider is temporarily unavailable",
}
_STATE_PROBLEMS = {
    "unknown": "This sign-in link is not valid or was already used.",
    "expired": "This sign-in link has expired (they last 10 minutes).",
    "wrong_provider": "This sign-in link was issued for another provider.",
}


@dataclass(frozen=True, slots=True)
class ParkedConnect:
    """A connect that came back from the provider and waits for its user's verification."""

    flow_id: str
    user_id: str
    provider: str
    provider_name: str
    username: str | None
    scopes: list[str]
    context: dict[str, Any] | None
    expires_at: float


@dataclass(frozen=True, slots=True)
class LoginStart:
    """Where to send the browser, and until when the state is valid."""

    login_url: str
    state_expires_at: datetime
    provider: str
    scopes: list[str]


@dataclass(frozen=True, slots=True)
class ConnectedAccount:
    """The outcome of a successful callback (no secrets)."""

    user_id: str
    provider: str
    provider_name: str
    credential: CredentialsMeta
    username: str | None
    reconnected: bool
    context: dict[str, Any] | None


def _parked(flow_id: str, flow: PendingFlow) -> ParkedConnect:
    return ParkedConnect(
        flow_id=flow_id,
        user_id=flow.user_id,
        provider=flow.provider,
        provider_name=provider_display_name(flow.provider),
        username=flow.account,
        scopes=list(flow.scopes),
        context=flow.context,
        expires_at=flow.expires_at,
    )


def parse_scopes(value: str | Iterable[str] | None) -> list[str]:
    """Scopes from a comma- or space-separated string (or a list), validated, order kept."""
    if value is None:
        return []
    raw = value.replace(",", " ").split() if isinstance(value, str) else [str(v) for v in value]
    scopes: list[str] = []
    for scope in raw:
        if not _SCOPE_TOKEN.match(scope):
            raise InvalidInputError(
                "Invalid scope: scopes are printable ASCII without spaces, quotes or backslashes, "
                "separated by commas (e.g. scopes=repo,read:user)"
            )
        if scope not in scopes:
            scopes.append(scope)
    if len(scopes) > MAX_SCOPES:
        raise InvalidInputError(f"Too many scopes: at most {MAX_SCOPES}")
    return scopes


class OAuthFlow:
    """Connects users' accounts at OAuth2 providers.

    Args:
        providers: The configured OAuth app of a provider, or None (``Pilot.oauth_provider``).
        states: Where pending logins wait for their callback.
        pending: Where connects wait for their user's verification.
        credentials: Where the tokens are stored (encrypted).
        settings: For provider overrides (``BLOCKPILOT_PROVIDER_<NAME>_USERINFO_URL``).
        redirect_uri_for: The callback URL of a provider, as the browser reaches it.
        prepare: Called with a provider's name and callback URL before a connect starts or
            comes back (an MCP source registers its OAuth client here: sources/mcp/oauth.py).
        timeout: Seconds for each call to the provider.
    """

    def __init__(
        self,
        *,
        providers: Callable[[str], OAuthProvider | None],
        states: OAuthStateStore,
        pending: PendingFlowStore,
        credentials: CredentialStore,
        settings: Settings,
        redirect_uri_for: Callable[[str], str],
        prepare: Callable[[str, str], Awaitable[None]] | None = None,
        timeout: float = 20.0,
    ) -> None:
        self._providers = providers
        self.states = states
        self.pending = pending
        self._credentials = credentials
        self._settings = settings
        self._redirect_uri_for = redirect_uri_for
        self._prepare = prepare
        self.timeout = timeout

    def provider(self, name: str) -> OAuthProvider:
        """The configured app of *name*.

        Raises:
            ProviderNotConfiguredError: unknown name, or no client id/secret/endpoints set.
        """
        provider = self._providers(name) if PROVIDER_NAME.match(name) else None
        if provider is None or not provider.authorize_url:
            shown = name[:64] if PROVIDER_NAME.match(name) else "this provider"
            raise ProviderNotConfiguredError(
                f"No OAuth app is configured for {shown!r}; the operator sets "
                "BLOCKPILOT_PROVIDER_<NAME>_CLIENT_ID and _CLIENT_SECRET (and, for providers "
                "without known endpoints, _AUTHORIZE_URL and _TOKEN_URL)",
                details={"provider": shown},
            )
        return provider

    def is_configured(self, name: str) -> bool:
        try:
            self.provider(name)
        except ProviderNotConfiguredError:
            return False
        return True

    async def start(
        self,
        user_id: str,
        provider_name: str,
        scopes: Iterable[str] = (),
        *,
        context: dict[str, Any] | None = None,
    ) -> LoginStart:
        """Issue a state and build the authorization URL for *user_id*."""
        if self._prepare is not None and PROVIDER_NAME.match(provider_name):
            await self._prepare(provider_name, self._redirect_uri_for(provider_name))
        provider = self.provider(provider_name)
        facts = provider_facts(provider.name)
        wanted = parse_scopes([*facts.login_scopes, *scopes])
        redirect_uri = self._redirect_uri_for(provider.name)
        if provider.scopes:  # what the provider asks every login for (an MCP server's scopes)
            wanted = parse_scopes([*wanted, *provider.scopes])
        state, pending = await self.states.issue(
            user_id, provider.name, wanted, redirect_uri, context=context
        )
        params = {
            "client_id": provider.client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": facts.scope_separator.join(wanted),
            "state": state,
            "code_challenge": pkce_s256(pending.code_verifier),
            "code_challenge_method": "S256",
            **facts.authorize_params,
        }
        if not wanted:
            del params["scope"]
        if provider.resource:
            params["resource"] = provider.resource  # RFC 8707: the token is for this server
        separator = "&" if "?" in provider.authorize_url else "?"
        return LoginStart(
            login_url=provider.authorize_url + separator + urlencode(params, quote_via=quote),
            state_expires_at=datetime.fromtimestamp(pending.expires_at, UTC),
            provider=provider.name,
            scopes=wanted,
        )

    async def finish(
        self,
        provider_name: str,
        *,
        code: str | None,
        state: str | None,
        error: str | None = None,
        park_if: Callable[[str], bool] = lambda user_id: True,
    ) -> ParkedConnect:
        """Handle the provider's redirect back: validate, exchange, park until verified.

        *park_if* gets the state's user: when it says no (nobody here can verify the flow),
        the state is spent and no code is exchanged, so no token of this browser's account
        is ever held for that user.

        Raises:
            ProviderNotConfiguredError: no app for *provider_name*.
            OAuthCallbackError: anything else that stops the connect; nothing was stored.
        """
        if self._prepare is not None and PROVIDER_NAME.match(provider_name):
            await self._prepare(provider_name, self._redirect_uri_for(provider_name))
        provider = self.provider(provider_name)
        display = provider_display_name(provider.name)
        if error is not None:
            if state:
                # The state is spent either way, so a declined login cannot be replayed.
                with contextlib.suppress(OAuthStateError):
                    await self.states.consume(state, provider.name)
            code_name = error if re.fullmatch(r"[a-z_]{1,40}", error) else "error"
            why = _PROVIDER_ERRORS.get(code_name, "the provider reported an error")
            raise OAuthCallbackError(
                f"{display} did not connect the account: {why} ({code_name}). "
                "Nothing was saved; go back to the chat to try again.",
                details={"reason": "provider_error", "provider_error": code_name},
            )
        if not state or not code:
            raise OAuthCallbackError(
                "The sign-in response is missing its code or state. Nothing was saved; go back "
                "to the chat to start again.",
                details={"reason": "missing_parameters"},
            )
        try:
            pending = await self.states.consume(state, provider.name)
        except OAuthStateError as exc:
            raise OAuthCallbackError(
                f"{_STATE_PROBLEMS[exc.reason]} Nothing was saved; go back to the chat and ask "
                "the copilot for a new link.",
                details={"reason": f"state_{exc.reason}"},
            ) from None
        if not park_if(pending.user_id):
            raise OAuthCallbackError(
                "This browser is not signed in to blockpilot as the person who started this "
                f"sign-in, so the {display} account was not connected. Nothing was saved. If "
                "you started it, open the setup link from your chat in this browser and connect "
                "from there; if someone sent you this link, you can ignore it.",
                details={"reason": "not_verified"},
            )
        creds = await self._exchange(provider, code, pending)
        flow_id, parked = await self.pending.park(pending.user_id, creds, pending.context)
        logger.info(
            "oauth connect waits for verification",
            extra={"provider": provider.name, "user_id": pending.user_id},
        )
        return _parked(flow_id, parked)

    async def peek(self, flow_id: str) -> ParkedConnect | None:
        """The pending connect *flow_id* (no secrets), or None."""
        flow = await self.pending.peek(flow_id)
        return _parked(flow_id, flow) if flow is not None else None

    async def complete(self, flow_id: str, user_id: str) -> ConnectedAccount:
        """Store the pending connect *flow_id*, if *user_id* is the user who started it.

        A flow is used up by any attempt: a mismatch discards it.

        Raises:
            OAuthFlowNotFoundError: unknown, already verified or expired flow.
            OAuthUserMismatchError: *user_id* is not the flow's user; nothing was stored.
        """
        taken = await self.pending.take(flow_id)
        if taken is None:
            raise OAuthFlowNotFoundError(
                "No pending connect with this flow id: it was already verified, it expired "
                "(they last 10 minutes), or it never existed. Nothing was saved.",
                details={"reason": "flow_unknown"},
            )
        flow, creds = taken
        if not hmac.compare_digest(flow.user_id.encode(), user_id.encode()):
            logger.warning(
                "oauth connect refused: verified by another user",
                extra={"provider": flow.provider, "user_id": flow.user_id},
            )
            raise OAuthUserMismatchError(
                "This connect was started by another blockpilot user; it was discarded and "
                "nothing was saved.",
                details={"reason": "user_mismatch"},
            )
        meta, reconnected = await self._store(flow.user_id, creds)
        logger.info(
            "oauth account connected",
            extra={"provider": flow.provider, "credential_id": meta.id, "user_id": flow.user_id},
        )
        return ConnectedAccount(
            user_id=flow.user_id,
            provider=flow.provider,
            provider_name=provider_display_name(flow.provider),
            credential=meta,
            username=creds.username,
            reconnected=reconnected,
            context=flow.context,
        )

    # -- internals ----------------------------------------------------------------------------

    async def _exchange(
        self, provider: OAuthProvider, code: str, pending: PendingLogin
    ) -> OAuth2Credentials:
        """Exchange *code* at the token endpoint; the credential to park."""
        display = provider_display_name(provider.name)
        try:
            issued = await exchange_code(
                provider.token_url,
                provider.token_client(),
                code=code,
                redirect_uri=pending.redirect_uri,
                code_verifier=pending.code_verifier,
                resource=provider.resource,
                name=display,
                timeout=self.timeout,
            )
        except (TokenResponseInvalidError, TokenEndpointUnavailableError) as exc:
            unreachable = exc.details.get("reason") == "unreachable"
            logger.warning(
                "oauth code exchange failed",
                extra={"provider": provider.name, "error": exc.code, "status": exc.status},
            )
            if unreachable:
                raise OAuthCallbackError(
                    f"Could not reach {display} to finish connecting the account. Nothing was "
                    "saved; try again from the chat in a moment.",
                    details={"reason": "token_unreachable"},
                ) from None
            raise OAuthCallbackError(
                f"{display} sent an invalid token response. Nothing was saved; try again from "
                "the chat.",
                details={"reason": "token_invalid"},
            ) from None
        except TokenEndpointError as exc:
            logger.warning(
                "oauth code exchange refused",
                extra={"provider": provider.name, "status": exc.status, "error": exc.error},
            )
            why = f" ({exc.error})" if exc.error else f" (HTTP {exc.status})"
            raise OAuthCallbackError(
                f"{display} refused to finish connecting the account{why}. Nothing was saved; go "
                "back to the chat and ask the copilot for a new link.",
                details={"reason": "token_refused", "provider_error": exc.error},
            ) from None
        return await self._credentials_from(provider, issued, pending)

    async def _credentials_from(
        self, provider: OAuthProvider, issued: IssuedTokens, pending: PendingLogin
    ) -> OAuth2Credentials:
        display = provider_display_name(provider.name)
        now = int(time.time())
        access_token = issued.access_token.get_secret_value()
        username = await self._username(provider, access_token)
        try:
            scopes = parse_scopes(issued.scopes) if issued.scopes else list(pending.scopes)
            return OAuth2Credentials(
                provider=provider.name,
                title=f"{display} ({username})" if username else f"{display} account",
                username=username,
                access_token=issued.access_token,
                access_token_expires_at=(
                    now + issued.expires_in if issued.expires_in is not None else None
                ),
                refresh_token=issued.refresh_token,
                refresh_token_expires_at=(
                    now + issued.refresh_token_expires_in
                    if issued.refresh_token_expires_in
                    else None
                ),
                scopes=sorted(scopes),
            )
        except (ValidationError, InvalidInputError):
            raise OAuthCallbackError(
                f"{display} sent an invalid token response. Nothing was saved; try again from "
                "the chat.",
                details={"reason": "token_invalid"},
            ) from None

    async def _username(self, provider: OAuthProvider, access_token: str) -> str | None:
        """The account's name when the provider tells it cheaply; None on any failure."""
        url = self._settings.provider_value(provider.name, "USERINFO_URL")
        if url is None and provider.name == "github":
            base = self._settings.provider_value("github", "BASE_URL")
            url = f"{base.rstrip('/')}/user" if base else PROVIDERS["github"].userinfo_url
        url = url or provider_facts(provider.name).userinfo_url
        if not url:
            return None
        try:
            response = await call_endpoint(
                "GET",
                url,
                timeout=min(self.timeout, 5.0),
                headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            )
        except (httpx.HTTPError, NetworkError):
            return None
        payload = response.json_object() if response.status_code == 200 else None
        if not isinstance(payload, dict):
            return None
        for key in _USERNAME_FIELDS:
            value = payload.get(key)
            if isinstance(value, str) and 0 < len(value.strip()) <= 100 and value.isprintable():
                return value.strip()
        return None

    async def _store(self, user_id: str, creds: OAuth2Credentials) -> tuple[CredentialsMeta, bool]:
        """Add the credential, or renew the same account's earlier one (keeping its id)."""
        if creds.username:
            for meta in await self._credentials.list_meta(user_id):
                if (
                    meta.provider == creds.provider
                    and meta.type == "oauth2"
                    and meta.title == creds.title
                ):
                    renewed = creds.model_copy(update={"id": meta.id})
                    await self._credentials.update(user_id, renewed)
                    stored = await self._credentials.get_meta(user_id, meta.id)
                    return (stored or renewed.meta()), True
        return await self._credentials.add(user_id, creds), False
