"""A real SMTP server (aiosmtpd) with AUTH, recording what it receives."""

from __future__ import annotations

import hmac
import socket
import threading
from collections import deque
from dataclasses import dataclass
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from typing import Any, cast

from ._http import (
    LOCALHOST,
    _BackgroundServer,
)

# --------------------------------------------------------------------------------------
# SMTP
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ReceivedEmail:
    """One message accepted by :class:`FakeSMTP`.

    ``message`` is parsed with ``email.policy.default``; ``raw`` is the DATA as received
    (CRLF line endings); ``login`` is the AUTH user name, or ``None`` if unauthenticated.
    """

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None
    raw: bytes

    @property
    def subject(self) -> str | None:
        subject = self.message["Subject"]
        return None if subject is None else str(subject)

    def text(self) -> str:
        """The plain-text body (the ``text/plain`` part of multipart messages)."""
        part = self.message.get_body(preferencelist=("plain",))
        if part is None:
            return ""
        return cast(str, cast(EmailMessage, part).get_content())


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _SMTPHandler:
    """aiosmtpd handler hooks (duck-typed; aiosmtpd looks up ``handle_*`` methods)."""

    def __init__(self, owner: FakeSMTP) -> None:
        self._owner = owner

    async def handle_MAIL(  # noqa: N802 - aiosmtpd hook name
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if self._owner.auth_required and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd hook name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        return self._owner._deliver(session, envelope)


class FakeSMTP(_BackgroundServer):
    """An SMTP server (``aiosmtpd``) on ``127.0.0.1`` with AUTH LOGIN/PLAIN over plaintext.

    Credentials are checked against ``username``/``password``; with ``username=None``
    any credentials are accepted and AUTH is optional.  ``auth_required`` (default:
    ``username is not None``) rejects ``MAIL FROM`` with 530 until authenticated.
    Accepted messages are in :attr:`messages`; AUTH attempts in :attr:`auth_attempts`.
    """

    def __init__(
        self,
        *,
        username: str | None = "user",
        password: str | None = "password",
        auth_required: bool | None = None,
        host: str = LOCALHOST,
    ) -> None:
        self.username = username
        self.password = password
        self.auth_required = (username is not None) if auth_required is None else auth_required
        super().__init__(host)
        self._controller: Any = None
        self._cond = threading.Condition(threading.RLock())
        self._messages: list[ReceivedEmail] = []
        self._auth_attempts: list[tuple[str, str, bool]] = []
        self._rejections: deque[str] = deque()

    # -- lifecycle ------------------------------------------------------------------

    def _serve(self) -> int:
        from aiosmtpd.controller import Controller  # lazy: optional test dependency

        port = _free_port(self._host)
        controller = Controller(
            _SMTPHandler(self),
            hostname=self._host,
            port=port,
            authenticator=self._authenticate,
            auth_require_tls=False,
        )
        controller.start()
        self._controller = controller
        return port

    def _shutdown(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    # -- recordings / behaviour -----------------------------------------------------

    @property
    def messages(self) -> list[ReceivedEmail]:
        with self._cond:
            return list(self._messages)

    @property
    def auth_attempts(self) -> list[tuple[str, str, bool]]:
        """``(mechanism, login, success)`` for every AUTH attempt."""
        with self._cond:
            return list(self._auth_attempts)

    def reject_next(self, reply: str = "550 5.7.1 Message rejected", *, times: int = 1) -> None:
        """Answer the DATA of the next ``times`` messages with ``reply`` (not recorded)."""
        with self._cond:
            self._rejections.extend(reply for _ in range(times))

    def wait_for_messages(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedEmail]:
        """Block until at least ``count`` messages arrived; raise ``TimeoutError`` else."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(f"expected {count} message(s), got {len(self._messages)}")
            return list(self._messages)

    def reset(self) -> None:
        with self._cond:
            self._messages.clear()
            self._auth_attempts.clear()
            self._rejections.clear()

    # -- aiosmtpd callbacks (run on the server's event-loop thread) -----------------

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult

        login = _decode(getattr(auth_data, "login", b""))
        password = _decode(getattr(auth_data, "password", b""))
        ok = self.username is None or (
            hmac.compare_digest(login.encode(), self.username.encode())
            and hmac.compare_digest(password.encode(), (self.password or "").encode())
        )
        with self._cond:
            self._auth_attempts.append((mechanism, login, ok))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def _deliver(self, session: Any, envelope: Any) -> str:
        with self._cond:
            if self._rejections:
                return self._rejections.popleft()
        raw = envelope.original_content or envelope.content
        raw_bytes = raw if isinstance(raw, bytes) else str(raw).encode()
        # Parse with "\n" line endings so bodies read back exactly as the sender wrote
        # them; ``raw`` keeps the bytes as received on the wire (CRLF).
        message = message_from_bytes(raw_bytes.replace(b"\r\n", b"\n"), policy=email_policy.default)
        login = getattr(session.auth_data, "login", None) if session.authenticated else None
        received = ReceivedEmail(
            mail_from=str(envelope.mail_from),
            rcpt_tos=list(envelope.rcpt_tos),
            message=message,
            login=_decode(login) if login is not None else None,
            raw=raw_bytes,
        )
        with self._cond:
            self._messages.append(received)
            self._cond.notify_all()
        return "250 Message accepted for delivery"


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
