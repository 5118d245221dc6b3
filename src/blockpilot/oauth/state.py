"""Server-side OAuth2 ``state``: single use, short-lived, bound to a user, a provider and PKCE.

The ``state`` sent to the provider is 32 random bytes (url-safe base64). Only its SHA-256
is stored, so a database reader cannot finish anyone's login; the PKCE verifier that goes
with it is stored encrypted (AES-256-GCM, associated data binding the state hash and the
user). The callback *consumes* a state: the row is deleted, and only the request whose
delete removed it may go on, so a state works once even under concurrent callbacks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from blockpilot.credentials.crypto import CredentialCipher
from blockpilot.errors import DecryptionError, OAuthStateError
from blockpilot.storage.common import utcnow
from blockpilot.storage.tables import oauth_states as table

STATE_TTL_SECONDS = 600
"""How long a login may take between ``/login`` and the callback (10 minutes)."""

_STATE_BYTES = 32
_MAX_STATE_CHARS = 128
_AAD_PREFIX = b"blockpilot:oauth-state:v1\0"


def hash_state(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()


def pkce_s256(verifier: str) -> str:
    """The S256 code challenge of *verifier* (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_pkce_verifier() -> str:
    """64 characters from the unreserved set (RFC 7636 allows 43-128)."""
    return secrets.token_urlsafe(48)


def _aad(state_hash: str, user_id: str) -> bytes:
    return _AAD_PREFIX + state_hash.encode() + b"\0" + user_id.encode()


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """What a state was issued for."""

    user_id: str
    provider: str
    scopes: list[str]
    redirect_uri: str
    code_verifier: str = field(repr=False)
    expires_at: float
    context: dict[str, Any] | None = None


class OAuthStateStore:
    """Issues and consumes OAuth2 states in the ``oauth_states`` table.

    Args:
        engine: The database.
        cipher: Encrypts the PKCE verifiers.
        ttl_seconds: Lifetime of a state.
        clock: Seconds since the epoch (tests move it forward).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        cipher: CredentialCipher,
        *,
        ttl_seconds: float = STATE_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._cipher = cipher
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    async def issue(
        self,
        user_id: str,
        provider: str,
        scopes: Sequence[str],
        redirect_uri: str,
        *,
        context: dict[str, Any] | None = None,
    ) -> tuple[str, PendingLogin]:
        """A new state and the login it stands for (with a fresh PKCE verifier)."""
        state = secrets.token_urlsafe(_STATE_BYTES)
        state_hash = hash_state(state)
        now = self.clock()
        pending = PendingLogin(
            user_id=user_id,
            provider=provider,
            scopes=list(scopes),
            redirect_uri=redirect_uri,
            code_verifier=new_pkce_verifier(),
            expires_at=now + self.ttl_seconds,
            context=context,
        )
        sealed = self._cipher.encrypt(
            pending.code_verifier.encode("ascii"), associated_data=_aad(state_hash, user_id)
        )
        async with self._engine.begin() as conn:
            # Abandoned logins are swept as new ones start; nothing else needs a timer.
            await conn.execute(delete(table).where(table.c.expires_at < now - self.ttl_seconds))
            await conn.execute(
                table.insert().values(
                    state_hash=state_hash,
                    user_id=user_id,
                    provider=provider,
                    scopes=pending.scopes,
                    redirect_uri=redirect_uri,
                    verifier=sealed,
                    context=context,
                    created_at=utcnow(),
                    expires_at=pending.expires_at,
                )
            )
        return state, pending

    async def consume(self, state: str, provider: str) -> PendingLogin:
        """Use *state* up: it never works again, whatever the outcome.

        Raises:
            OAuthStateError: unknown (or used, or tampered), expired, or issued for another
                provider.
        """
        if not state or len(state) > _MAX_STATE_CHARS:
            raise OAuthStateError(reason="unknown")
        state_hash = hash_state(state)
        async with self._engine.begin() as conn:
            # One statement finds and removes the row: of two concurrent callbacks with the
            # same state, exactly one gets it back.
            row = (
                await conn.execute(
                    delete(table).where(table.c.state_hash == state_hash).returning(*table.c)
                )
            ).first()
        if row is None or not hmac.compare_digest(str(row.state_hash), state_hash):
            raise OAuthStateError(reason="unknown")
        if float(row.expires_at) <= self.clock():
            raise OAuthStateError(reason="expired")
        if not hmac.compare_digest(str(row.provider).encode(), provider.encode()):
            raise OAuthStateError(reason="wrong_provider")
        try:
            verifier = self._cipher.decrypt(
                bytes(row.verifier), associated_data=_aad(state_hash, str(row.user_id))
            ).decode("ascii")
        except (DecryptionError, UnicodeDecodeError):
            raise OAuthStateError(reason="unknown") from None
        return PendingLogin(
            user_id=str(row.user_id),
            provider=str(row.provider),
            scopes=[str(s) for s in row.scopes or ()],
            redirect_uri=str(row.redirect_uri),
            code_verifier=verifier,
            expires_at=float(row.expires_at),
            context=dict(row.context) if isinstance(row.context, dict) else None,
        )
