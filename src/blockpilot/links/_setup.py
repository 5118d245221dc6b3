"""Signed setup links: ``<public_url>/setup/<token>`` for one user's one missing credential.

Token format (ASCII, URL-safe, about 300-400 characters)::

    <payload>.<signature>
    payload   = base64url(JSON), no padding; JSON keys (sorted, compact):
                v    format version (1)
                u    user id
                b    block id
                f    credentials field id (the missing entry's "id")
                p    provider
                t    supported credential types (sorted)
                s    required OAuth scopes (sorted)
                h    host the run's URL names (host-scoped credentials), or null
                iat  issued at (Unix seconds)
                exp  expires at (Unix seconds)
    signature = base64url(HMAC-SHA256(key, "blockpilot-setup-link.v1." + payload)), no padding

The key is derived from the encryption key ring (HKDF, purpose ``setup-links``; see
:meth:`~blockpilot.credentials.crypto.KeyRing.derived_keys`): every node that can decrypt the
credentials can verify the links, a link signed before a key rotation verifies while the old
key stays in the ring, and nothing else needs configuring. The token carries no API key and
no secret: it authorises only *adding* a credential (or connecting an account) for that user,
for that requirement, until it expires.

A link stores at most one credential (:mod:`blockpilot.web.link_uses`), and opening it signs
the browser in for its user (:mod:`blockpilot.web.sessions`): see ``docs/oauth.md``.

*Start links* (``<public_url>/oauth/start/<token>``, what ``GET /integrations/{provider}/login``
returns) use the same format with label ``blockpilot-oauth-start.v1.`` and the payload
``{"v": 1, "u": user id, "l": the provider's authorization URL, "exp": ...}``: opening one
signs the browser in for the user and redirects to the provider.

The setup form carries an anti-CSRF field: ``base64url(HMAC-SHA256(key, "blockpilot-setup-csrf.v1."
+ token))``, checked in constant time with the token on every POST.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from blockpilot.credentials.models import CREDENTIAL_TYPES
from blockpilot.errors import SetupLinkError, TokenError
from blockpilot.links.signing import b64, mac, seal, signature_ok, unseal

TOKEN_VERSION = 1
MAX_TOKEN_CHARS = 4096
_LINK_LABEL = b"blockpilot-setup-link.v1."
_CSRF_LABEL = b"blockpilot-setup-csrf.v1."
_START_LABEL = b"blockpilot-oauth-start.v1."
MAX_START_TOKEN_CHARS = 8192
KEY_PURPOSE = "setup-links"


@dataclass(frozen=True, slots=True)
class SetupGrant:
    """What a verified setup token allows: adding one credential for one user."""

    user_id: str
    block_id: str
    field_id: str
    provider: str
    types: tuple[str, ...]
    scopes: tuple[str, ...]
    host: str | None
    issued_at: int
    expires_at: int


class SetupLinks:
    """Signs and verifies setup tokens.

    Args:
        keys: Signing keys, the first signs; all verify (key rotation).
        public_url: Where browsers reach the service (no trailing slash).
        ttl_seconds: Lifetime of a link.
        clock: Seconds since the epoch (tests move it forward).
    """

    def __init__(
        self,
        keys: Sequence[bytes],
        public_url: str,
        *,
        ttl_seconds: int = 1800,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self._keys = tuple(keys)
        self.public_url = public_url.rstrip("/")
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    # -- signing --------------------------------------------------------------------------

    def token(self, user_id: str, block_id: str, entry: dict[str, Any]) -> str:
        """A token for the missing credential *entry* (docs/architecture.md) of *user_id*."""
        now = int(self.clock())
        types = entry.get("types") or [entry.get("type") or "api_key"]
        payload = {
            "v": TOKEN_VERSION,
            "u": user_id,
            "b": block_id,
            "f": str(entry.get("id", "credentials")),
            "p": str(entry.get("provider", "unknown")),
            "t": sorted({str(t) for t in types}),
            "s": sorted({str(s) for s in entry.get("scopes") or ()}),
            "h": entry.get("host") if isinstance(entry.get("host"), str) else None,
            "iat": now,
            "exp": now + self.ttl_seconds,
        }
        return seal(self._keys[0], _LINK_LABEL, payload)

    def url(self, user_id: str, block_id: str, entry: dict[str, Any]) -> str:
        """The setup link of *entry*: a :data:`~blockpilot.runner.SetupUrlBuilder`."""
        return f"{self.public_url}/setup/{self.token(user_id, block_id, entry)}"

    def start_url(self, user_id: str, login_url: str, expires_at: float) -> str:
        """A link that signs the browser in for *user_id*, then goes on to *login_url*."""
        payload = {"v": TOKEN_VERSION, "u": user_id, "l": login_url, "exp": int(expires_at)}
        token = seal(self._keys[0], _START_LABEL, payload)
        return f"{self.public_url}/oauth/start/{token}"

    def verify_start(self, token: str) -> tuple[str, str]:
        """The ``(user id, authorization URL)`` of a genuine, unexpired start token.

        Raises:
            SetupLinkError: ``invalid`` or ``expired``.
        """
        if not isinstance(token, str) or not 0 < len(token) <= MAX_START_TOKEN_CHARS:
            raise SetupLinkError(reason="invalid")
        try:
            payload = unseal(self._keys, _START_LABEL, token)
            user_id, login_url, expires_at = payload["u"], payload["l"], payload["exp"]
        except (TokenError, TypeError, KeyError):
            raise SetupLinkError(reason="invalid") from None
        if (
            payload.get("v") != TOKEN_VERSION
            or not isinstance(user_id, str)
            or not isinstance(login_url, str)
            or not login_url.startswith(("https://", "http://"))
            or isinstance(expires_at, bool)
            or not isinstance(expires_at, int)
        ):
            raise SetupLinkError(reason="invalid")
        if expires_at <= self.clock():
            raise SetupLinkError(reason="expired")
        return user_id, login_url

    def csrf_token(self, token: str) -> str:
        return b64(mac(self._keys[0], _CSRF_LABEL, token))

    # -- verifying ------------------------------------------------------------------------

    def verify(self, token: str) -> SetupGrant:
        """The grant of a genuine, unexpired *token*.

        Raises:
            SetupLinkError: ``invalid`` (malformed, tampered, foreign) or ``expired``.
        """
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            raise SetupLinkError(reason="invalid")
        try:
            # unseal checks the signature before anything in the payload is even parsed.
            grant = _grant(unseal(self._keys, _LINK_LABEL, token))
        except (TokenError, ValueError, TypeError, KeyError):
            raise SetupLinkError(reason="invalid") from None
        if grant.expires_at <= self.clock():
            raise SetupLinkError(reason="expired")
        return grant

    def csrf_ok(self, token: str, value: str | None) -> bool:
        if not value or len(value) > 128:
            return False
        return signature_ok(self._keys, _CSRF_LABEL, token, value)


def _grant(payload: Any) -> SetupGrant:
    if not isinstance(payload, dict) or payload.get("v") != TOKEN_VERSION:
        raise ValueError("unknown token version")

    def text(key: str) -> str:
        value = payload[key]
        if not isinstance(value, str) or not value or len(value) > 200:
            raise ValueError(key)
        return value

    def texts(key: str) -> tuple[str, ...]:
        value = payload[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(key)
        return tuple(value)

    def seconds(key: str) -> int:
        value = payload[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(key)
        return value

    types = texts("t")
    if not types or not set(types) <= set(CREDENTIAL_TYPES):
        raise ValueError("t")
    host = payload.get("h")
    if host is not None and (not isinstance(host, str) or len(host) > 300):
        raise ValueError("h")
    return SetupGrant(
        user_id=text("u"),
        block_id=text("b"),
        field_id=text("f"),
        provider=text("p"),
        types=types,
        scopes=texts("s"),
        host=host,
        issued_at=seconds("iat"),
        expires_at=seconds("exp"),
    )
