"""Signed, expiring tokens for links a person opens: ``<payload>.<signature>``.

``payload`` is base64url(compact JSON) and ``signature`` base64url(HMAC-SHA256(key, label +
payload)), both without padding. The keys are a list derived from the encryption key ring
(the first signs, every one verifies, so tokens survive a key rotation), and the label
separates the kinds of token, so one kind can never pass for another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from typing import Any


class TokenError(Exception):
    """A token that cannot be used: ``invalid`` (malformed or tampered) or ``expired``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(
        self,
        keys: Sequence[bytes],
        label: bytes,
        *,
        max_chars: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self._keys = list(keys)
        self._label = label
        self._max_chars = max_chars
        self._clock = clock

    def sign(self, payload: dict[str, Any]) -> str:
        """A token for *payload*, which must hold ``exp`` (Unix seconds)."""
        body = b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{b64(self._mac(self._keys[0], body))}"

    def verify(self, token: str) -> dict[str, Any]:
        """The payload of a valid, unexpired token; :class:`TokenError` otherwise."""
        if not isinstance(token, str) or not token or len(token) > self._max_chars:
            raise TokenError("invalid")
        body, dot, signature = token.partition(".")
        try:
            given = unb64(signature)
        except (binascii.Error, ValueError):
            raise TokenError("invalid") from None
        if not dot or not any(
            hmac.compare_digest(self._mac(key, body), given) for key in self._keys
        ):
            raise TokenError("invalid")
        try:
            payload = json.loads(unb64(body))
        except (binascii.Error, ValueError):
            raise TokenError("invalid") from None
        expires = payload.get("exp") if isinstance(payload, dict) else None
        if isinstance(expires, bool) or not isinstance(expires, int):
            raise TokenError("invalid")
        if expires <= self._clock():
            raise TokenError("expired")
        return payload

    def tag(self, message: str) -> str:
        """A MAC of *message* under this signer's label (e.g. an anti-CSRF form field)."""
        return b64(self._mac(self._keys[0], "tag." + message))

    def tag_ok(self, message: str, value: str | None) -> bool:
        if not value:
            return False
        try:
            given = unb64(value)
        except (binascii.Error, ValueError):
            return False
        return any(
            hmac.compare_digest(self._mac(key, "tag." + message), given) for key in self._keys
        )

    def _mac(self, key: bytes, message: str) -> bytes:
        return hmac.new(key, self._label + message.encode(), hashlib.sha256).digest()
