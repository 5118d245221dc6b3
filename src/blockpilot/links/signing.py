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

from blockpilot.errors import TokenError


def b64(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mac(key: bytes, label: bytes, message: str) -> bytes:
    """HMAC-SHA256(key, label + message): the label keeps one kind of token from passing
    for another."""
    return hmac.new(key, label + message.encode("utf-8", "replace"), hashlib.sha256).digest()


def signature_ok(keys: Sequence[bytes], label: bytes, message: str, signature: str) -> bool:
    """Whether base64url *signature* is the MAC of *message* under any of *keys*."""
    try:
        given = unb64(signature)
    except (binascii.Error, ValueError):
        return False
    ok = False
    for key in keys:  # every key is tried: timing does not tell which one matched
        ok |= hmac.compare_digest(mac(key, label, message), given)
    return ok


def seal(key: bytes, label: bytes, payload: dict[str, Any]) -> str:
    """``<payload>.<signature>`` for *payload* (compact JSON with sorted keys)."""
    body = b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{b64(mac(key, label, body))}"


def unseal(keys: Sequence[bytes], label: bytes, token: str) -> Any:
    """The parsed JSON payload of a token whose signature holds; :class:`TokenError`
    (``invalid``) otherwise. The signature is checked before the payload is even parsed;
    expiry and payload shape are the caller's to check."""
    body, dot, signature = token.partition(".")
    if not dot or not body or not signature or not signature_ok(keys, label, body, signature):
        raise TokenError(reason="invalid")
    try:
        return json.loads(unb64(body))
    except (binascii.Error, ValueError):
        raise TokenError(reason="invalid") from None


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
        return seal(self._keys[0], self._label, payload)

    def verify(self, token: str) -> dict[str, Any]:
        """The payload of a valid, unexpired token; :class:`TokenError` otherwise."""
        if not isinstance(token, str) or not token or len(token) > self._max_chars:
            raise TokenError(reason="invalid")
        payload = unseal(self._keys, self._label, token)
        if not isinstance(payload, dict):
            raise TokenError(reason="invalid")
        expires = payload.get("exp")
        if isinstance(expires, bool) or not isinstance(expires, int):
            raise TokenError(reason="invalid")
        if expires <= self._clock():
            raise TokenError(reason="expired")
        return payload

    def tag(self, message: str) -> str:
        """A MAC of *message* under this signer's label (e.g. an anti-CSRF form field)."""
        return b64(mac(self._keys[0], self._label, "tag." + message))

    def tag_ok(self, message: str, value: str | None) -> bool:
        return bool(value) and signature_ok(self._keys, self._label, "tag." + message, value or "")
