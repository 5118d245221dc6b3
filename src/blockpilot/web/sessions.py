"""Browser sessions: which blockpilot user this browser acts for (see ``docs/oauth.md``).

Opening a setup link (or the start link of an API login) signs the browser in for exactly
the link's user, for a short time, with a cookie; an OAuth connect is only stored when the
browser that finishes it carries the session of the user who started it. That is the
default *user verifier*: a login URL forwarded to someone else finishes in a browser without
that session and connects nothing.

Cookie value (ASCII)::

    <payload>.<signature>
    payload   = base64url(JSON {"v": 1, "u": user id, "sid": 16 random bytes (b64url),
                                "exp": Unix seconds}), no padding
    signature = base64url(HMAC-SHA256(key, "blockpilot-browser-session.v1." + payload))

The key is derived from the encryption key ring (purpose ``browser-sessions``). The cookie is
``HttpOnly``, ``SameSite=Lax`` (sent on the provider's top-level redirect back, not on
cross-site POSTs), ``Secure`` when the public URL is https, ``Path=/``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from blockpilot.errors import TokenError
from blockpilot.links.signing import b64, mac, seal, signature_ok, unseal

COOKIE_NAME = "blockpilot_session"
KEY_PURPOSE = "browser-sessions"
_LABEL = b"blockpilot-browser-session.v1."
_CONFIRM_LABEL = b"blockpilot-connect-confirm.v1."
_MAX_COOKIE_CHARS = 1024


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """The user a browser is signed in for, until ``expires_at``."""

    user_id: str
    session_id: str
    expires_at: int


class BrowserSessions:
    """Signs, reads and sets the session cookie.

    Args:
        keys: Signing keys, the first signs; all verify (key rotation).
        secure: Mark the cookie ``Secure`` (the public URL is https).
        ttl_seconds: Lifetime of a session.
        clock: Seconds since the epoch (tests move it forward).
    """

    def __init__(
        self,
        keys: Sequence[bytes],
        *,
        secure: bool,
        ttl_seconds: int = 1800,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self._keys = tuple(keys)
        self.secure = secure
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def sign_in(self, response: Response, user_id: str) -> BrowserSession:
        """Set a new session cookie for *user_id* on *response*."""
        session = BrowserSession(
            user_id=user_id,
            session_id=b64(secrets.token_bytes(16)),
            expires_at=int(self.clock()) + self.ttl_seconds,
        )
        payload = {"v": 1, "u": user_id, "sid": session.session_id, "exp": session.expires_at}
        value = seal(self._keys[0], _LABEL, payload)
        response.set_cookie(
            COOKIE_NAME,
            value,
            max_age=self.ttl_seconds,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )
        return session

    def of(self, request: Request) -> BrowserSession | None:
        """The valid, unexpired session the request's cookie carries, or None."""
        value = request.cookies.get(COOKIE_NAME)
        if not value or len(value) > _MAX_COOKIE_CHARS:
            return None
        try:
            payload = unseal(self._keys, _LABEL, value)
            user_id, session_id, expires_at = payload["u"], payload["sid"], payload["exp"]
        except (TokenError, TypeError, KeyError):
            return None
        if (
            payload.get("v") != 1
            or not isinstance(user_id, str)
            or not isinstance(session_id, str)
            or isinstance(expires_at, bool)
            or not isinstance(expires_at, int)
            or expires_at <= self.clock()
        ):
            return None
        return BrowserSession(user_id, session_id, expires_at)

    def confirm_token(self, session: BrowserSession, flow_id: str) -> str:
        """The anti-CSRF field of the confirm form: bound to this session and this flow."""
        message = f"{session.session_id}\0{flow_id}"
        return b64(mac(self._keys[0], _CONFIRM_LABEL, message))

    def confirm_ok(self, session: BrowserSession, flow_id: str, value: str | None) -> bool:
        if not value or len(value) > 128:
            return False
        return signature_ok(self._keys, _CONFIRM_LABEL, f"{session.session_id}\0{flow_id}", value)
