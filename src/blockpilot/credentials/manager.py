"""IntegrationCredentialsManager: fetch a user's credential, refreshing OAuth2 tokens once."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from pydantic import SecretStr

from blockpilot.credentials.models import (
    APIKeyCredentials,
    Credentials,
    CredentialsMeta,
    OAuth2Credentials,
)
from blockpilot.errors import (
    ConflictError,
    LeaseLostError,
    LockUnavailableError,
    OAuthRefreshError,
    ReauthorizationRequiredError,
)
from blockpilot.locks import InProcessLockManager, Lease, LockManager
from blockpilot.oauth.providers import OAuthProvider
from blockpilot.storage.credentials import CredentialStore

logger = logging.getLogger(__name__)

REFRESH_MARGIN_SECONDS = 300
LOCK_WAIT_SECONDS = 30.0
"""How long a run waits for another process's refresh of the same credential."""
_SYSTEM_NAMESPACE = uuid.UUID("6f1c3a52-8d0e-4b7a-9c2f-5e4d3b2a1f00")


def system_credential_id(provider: str) -> str:
    return str(uuid.uuid5(_SYSTEM_NAMESPACE, f"system:{provider}"))


class SystemCredentials:
    """Operator-paid platform keys (``BLOCKPILOT_SYSTEM_<NAME>_API_KEY``), usable by every user
    only after the user's own credentials."""

    def __init__(self, keys: dict[str, SecretStr]) -> None:
        self._by_id = {
            system_credential_id(provider): APIKeyCredentials(
                id=system_credential_id(provider),
                provider=provider,
                api_key=key,
                title=f"{provider} (platform key)",
            )
            for provider, key in sorted(keys.items())
        }
        self._meta = [c.meta(is_system=True) for c in self._by_id.values()]

    def metas(self) -> list[CredentialsMeta]:
        return list(self._meta)

    def get(self, cred_id: str) -> APIKeyCredentials | None:
        return self._by_id.get(cred_id)

    def secret_values(self) -> list[str]:
        return [v for c in self._by_id.values() for v in c.secret_values()]


class IntegrationCredentialsManager:
    """Reads credentials from the user's own store and keeps OAuth2 tokens fresh.

    A token expiring within :data:`REFRESH_MARGIN_SECONDS` is refreshed under a lock keyed
    by user and credential; whoever waits on the lock re-reads the stored token afterwards,
    so many concurrent runs cause exactly one refresh. With several processes the lock is a
    Redis lease: the refreshed tokens are stored only if the lease is still held and no
    newer lease's refresh was stored (fencing token). If the lock service is down, providers
    that rotate refresh tokens are not refreshed at all (fail closed; a still-valid token is
    used meanwhile); providers with static refresh tokens fall back to this process's lock.
    """

    def __init__(
        self,
        store: CredentialStore,
        locks: LockManager,
        providers: Callable[[str], OAuthProvider | None],
        system: SystemCredentials,
    ) -> None:
        self.store = store
        self._locks = locks
        # Only for providers whose refresh tokens stay valid, when the shared lock is down.
        self._local_locks = InProcessLockManager()
        self._providers = providers
        self.system = system

    async def candidates(self, user_id: str) -> list[CredentialsMeta]:
        """Everything this user may use: own credentials first, then platform keys."""
        return [*await self.store.list_meta(user_id), *self.system.metas()]

    async def get(self, user_id: str, cred_id: str) -> Credentials | None:
        """The usable credential *cred_id* of *user_id* (refreshed if needed), or None."""
        creds = await self.store.get(user_id, cred_id)
        if creds is None:
            return self.system.get(cred_id)
        if isinstance(creds, OAuth2Credentials) and creds.expires_within(REFRESH_MARGIN_SECONDS):
            return await self._refresh(user_id, creds)
        return creds

    async def refresh_rejected(
        self, user_id: str, rejected: OAuth2Credentials
    ) -> OAuth2Credentials | None:
        """New tokens for *rejected*, which an upstream refused (HTTP 401) before it expired.

        Under the same lock as :meth:`get`'s refresh, so racing runs refresh once: a run that
        finds the stored token already replaced takes that one. None when it cannot be
        refreshed (no OAuth app, no refresh token, the grant refused, no lock): the user must
        reconnect (docs/sources.md).

        Raises:
            OAuthRefreshError: a transient failure; try again later.
        """
        provider = self._providers(rejected.provider)
        if provider is None or rejected.refresh_token is None:
            return None
        try:
            async with self._locks.hold(
                f"oauth-refresh:{user_id}:{rejected.id}", timeout=LOCK_WAIT_SECONDS
            ) as lease:
                current = await self.store.get(user_id, rejected.id)
                if not isinstance(current, OAuth2Credentials):
                    return None
                if current.access_token.get_secret_value() != (
                    rejected.access_token.get_secret_value()
                ):
                    return current  # another run refreshed it meanwhile
                try:
                    fresh = await provider.refresh(current)
                except ReauthorizationRequiredError:
                    await self.store.mark_needs_reauthorization(user_id, current.id)
                    return None
                await lease.verify()
                await self.store.update(user_id, fresh, fence=lease.fencing_token)
        except (LockUnavailableError, TimeoutError, LeaseLostError, ConflictError):
            return None
        logger.info(
            "oauth token refreshed after a 401",
            extra={"provider": fresh.provider, "credential_id": fresh.id},
        )
        return fresh

    async def _refresh(self, user_id: str, stale: OAuth2Credentials) -> OAuth2Credentials:
        provider = self._providers(stale.provider)
        if provider is None:
            if stale.expires_within(0):
                raise OAuthRefreshError(
                    f"The {stale.provider} token has expired and no OAuth app is configured to "
                    f"refresh it (set BLOCKPILOT_PROVIDER_{stale.provider.upper()}_CLIENT_ID "
                    "and _CLIENT_SECRET)"
                )
            return stale
        key = f"oauth-refresh:{user_id}:{stale.id}"
        try:
            try:
                async with self._locks.hold(key, timeout=LOCK_WAIT_SECONDS) as lease:
                    return await self._refresh_holding(user_id, stale, provider, lease)
            except LockUnavailableError:
                if provider.rotates_refresh_tokens:
                    # Fail closed: without the shared lock another process may be presenting the
                    # same refresh token right now, and reuse can revoke the whole grant.
                    if not stale.expires_within(0):
                        return stale  # still valid: use it, refresh later
                    raise OAuthRefreshError(
                        f"Cannot refresh the {provider.name} token now: the lock service "
                        f"(Redis) is unreachable and {provider.name} rotates refresh tokens, so "
                        "refreshing without the lock could revoke the connection. "
                        "Try again shortly."
                    ) from None
                # A refresh token that stays valid may be used twice: this process's own lock
                # is enough.
                logger.warning(
                    "lock service unreachable; refreshing under this process's lock only"
                )
                async with self._local_locks.hold(key, timeout=LOCK_WAIT_SECONDS) as lease:
                    return await self._refresh_holding(user_id, stale, provider, lease)
        except TimeoutError:
            if not stale.expires_within(0):
                return stale
            raise OAuthRefreshError(
                f"Timed out waiting for another refresh of the {provider.name} token; "
                "try again shortly"
            ) from None

    async def _refresh_holding(
        self, user_id: str, stale: OAuth2Credentials, provider: OAuthProvider, lease: Lease
    ) -> OAuth2Credentials:
        current = await self.store.get(user_id, stale.id)
        if not isinstance(current, OAuth2Credentials):
            raise ReauthorizationRequiredError("The credential was removed while refreshing")
        if not current.expires_within(REFRESH_MARGIN_SECONDS):
            return current  # someone else refreshed it while we waited
        try:
            fresh = await provider.refresh(current)
        except ReauthorizationRequiredError:
            await self.store.mark_needs_reauthorization(user_id, current.id)
            if not current.expires_within(0):
                # Refused for the future, but the current token still works: use it this once.
                return current
            raise
        except OAuthRefreshError:
            if not current.expires_within(0):
                logger.warning(
                    "token refresh failed; using the still-valid token",
                    extra={"provider": current.provider},
                )
                return current
            raise
        try:
            # Fencing: only the holder of the newest lease may store (a holder that stalled past
            # its lease must not overwrite whoever refreshed after it).
            await lease.verify()
            await self.store.update(user_id, fresh, fence=lease.fencing_token)
        except (LeaseLostError, ConflictError) as exc:
            logger.error(
                "oauth token refresh not stored: the refresh lock lease was lost",
                extra={"provider": fresh.provider, "credential_id": fresh.id, "reason": str(exc)},
            )
            latest = await self.store.get(user_id, stale.id)
            if isinstance(latest, OAuth2Credentials) and not latest.expires_within(
                REFRESH_MARGIN_SECONDS
            ):
                return latest  # the newer holder's tokens
            raise OAuthRefreshError(
                f"The {provider.name} token refresh outlasted its lock lease and was not stored; "
                "try again"
            ) from None
        logger.info(
            "oauth token refreshed", extra={"provider": fresh.provider, "credential_id": fresh.id}
        )
        return fresh
