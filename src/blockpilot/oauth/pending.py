"""OAuth connects parked until the right person verifies them (see ``docs/oauth.md``).

The callback of a connect does not store the account: the browser that brought the code
back may belong to someone other than the user who started the login (a forwarded link).
It parks the tokens here under a random *flow id*, and only a verification by the flow's
own user (:meth:`PendingFlowStore.take`) hands them over to be stored.

Only the SHA-256 of the flow id is stored; the credential is an AES-256-GCM token whose
associated data binds the flow hash and the user. A flow lives 10 minutes and is taken once:
the row is deleted by the statement that reads it, so of two concurrent verifications
exactly one gets it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from blockpilot.credentials.crypto import CredentialCipher
from blockpilot.credentials.models import OAuth2Credentials
from blockpilot.errors import DecryptionError
from blockpilot.storage.common import utcnow
from blockpilot.storage.tables import oauth_pending_flows as table

PENDING_TTL_SECONDS = 600
"""How long a connect waits for its verification (10 minutes)."""

_FLOW_BYTES = 32
MAX_FLOW_ID_CHARS = 128
_AAD_PREFIX = b"blockpilot:oauth-pending:v1\0"


def hash_flow_id(flow_id: str) -> str:
    return hashlib.sha256(flow_id.encode("utf-8", "surrogatepass")).hexdigest()


def _aad(flow_hash: str, user_id: str) -> bytes:
    return _AAD_PREFIX + flow_hash.encode() + b"\0" + user_id.encode()


@dataclass(frozen=True, slots=True)
class PendingFlow:
    """A parked connect, without its secrets: what a verification page may show."""

    user_id: str
    provider: str
    account: str | None
    scopes: list[str]
    context: dict[str, Any] | None
    expires_at: float


class PendingFlowStore:
    """Parks, shows and hands over connects in the ``oauth_pending_flows`` table.

    Args:
        engine: The database.
        cipher: Encrypts the parked credential.
        ttl_seconds: How long a flow waits.
        clock: Seconds since the epoch (tests move it forward).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        cipher: CredentialCipher,
        *,
        ttl_seconds: float = PENDING_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._cipher = cipher
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    async def park(
        self, user_id: str, creds: OAuth2Credentials, context: dict[str, Any] | None
    ) -> tuple[str, PendingFlow]:
        """Keep *creds* for *user_id* until verified; returns the new flow id."""
        flow_id = secrets.token_urlsafe(_FLOW_BYTES)
        flow_hash = hash_flow_id(flow_id)
        now = self.clock()
        flow = PendingFlow(
            user_id=user_id,
            provider=creds.provider,
            account=creds.username,
            scopes=list(creds.scopes),
            context=context,
            expires_at=now + self.ttl_seconds,
        )
        plain = {
            **creds.model_dump(mode="json", exclude={"access_token", "refresh_token"}),
            "access_token": creds.access_token.get_secret_value(),
            "refresh_token": creds.refresh_token.get_secret_value()
            if creds.refresh_token is not None
            else None,
        }
        sealed = self._cipher.encrypt(
            json.dumps(plain).encode(), associated_data=_aad(flow_hash, user_id)
        )
        async with self._engine.begin() as conn:
            # Flows nobody verified are swept as new ones park; nothing else needs a timer.
            await conn.execute(delete(table).where(table.c.expires_at < now))
            await conn.execute(
                table.insert().values(
                    flow_hash=flow_hash,
                    user_id=user_id,
                    provider=flow.provider,
                    account=flow.account,
                    scopes=flow.scopes,
                    sealed=sealed,
                    context=context,
                    created_at=utcnow(),
                    expires_at=flow.expires_at,
                )
            )
        return flow_id, flow

    async def peek(self, flow_id: str) -> PendingFlow | None:
        """The unexpired flow *flow_id*, without taking it (for a verification page)."""
        if not flow_id or len(flow_id) > MAX_FLOW_ID_CHARS:
            return None
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(table).where(table.c.flow_hash == hash_flow_id(flow_id)))
            ).first()
        if row is None or float(row.expires_at) <= self.clock():
            return None
        return _flow(row)

    async def take(self, flow_id: str) -> tuple[PendingFlow, OAuth2Credentials] | None:
        """Remove the flow and return it with its credential; None if unknown or expired."""
        if not flow_id or len(flow_id) > MAX_FLOW_ID_CHARS:
            return None
        flow_hash = hash_flow_id(flow_id)
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    delete(table).where(table.c.flow_hash == flow_hash).returning(*table.c)
                )
            ).first()
        if row is None or not hmac.compare_digest(str(row.flow_hash), flow_hash):
            return None
        if float(row.expires_at) <= self.clock():
            return None
        try:
            plain = self._cipher.decrypt(
                bytes(row.sealed), associated_data=_aad(flow_hash, str(row.user_id))
            )
            creds = OAuth2Credentials.model_validate_json(plain)
        except (DecryptionError, ValidationError, ValueError):
            return None
        return _flow(row), creds

    async def discard(self, flow_id: str) -> None:
        if flow_id and len(flow_id) <= MAX_FLOW_ID_CHARS:
            async with self._engine.begin() as conn:
                await conn.execute(delete(table).where(table.c.flow_hash == hash_flow_id(flow_id)))


def _flow(row: Any) -> PendingFlow:
    return PendingFlow(
        user_id=str(row.user_id),
        provider=str(row.provider),
        account=str(row.account) if row.account is not None else None,
        scopes=[str(s) for s in row.scopes or ()],
        context=dict(row.context) if isinstance(row.context, dict) else None,
        expires_at=float(row.expires_at),
    )
