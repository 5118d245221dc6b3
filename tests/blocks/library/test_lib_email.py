"""SendEmailBlock against FakeSMTP (and a STARTTLS server) over real sockets."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blockpilot.blocks.library.email import SendEmailBlock
from blockpilot.testing import FakeSMTP

MAIL = SendEmailBlock.id
PASSWORD = "smtp-pass-Sup3rSecret!value"


@pytest.fixture
def smtp() -> Iterator[FakeSMTP]:
    with FakeSMTP(username="mailer@example.com", password=PASSWORD) as srv:
        yield srv


async def _creds(
    pilot,
    user,
    password: str = PASSWORD,
    username: str = "mailer@example.com",
    host: str = "127.0.0.1",
) -> str:
    # SMTP credentials are bound to their server (tests/security/test_sec_smtp_binding.py).
    meta = await pilot.add_credentials(
        user.id,
        {
            "provider": "smtp",
            "type": "user_password",
            "username": username,
            "password": password,
            "host": host,
        },
    )
    return meta.id


def _mail(smtp_port: int, **extra: Any) -> dict[str, Any]:
    data = {
        "to_email": "bob@example.org",
        "subject": "Quarterly report",
        "body": "Hello Bob,\n\nthe numbers are in.\n",
        "smtp_server": "127.0.0.1",
        "smtp_port": smtp_port,
    }
    data.update(extra)
    return data


async def test_sends_authenticated_email(pilot, alice, run, smtp) -> None:
    await _creds(pilot, alice)
    r = await run(pilot, alice, MAIL, _mail(smtp.port))
    assert r["type"] == "block_output", r
    assert r["outputs"] == {"status": ["Email sent successfully"]}
    [message] = smtp.wait_for_messages(1)
    assert message.rcpt_tos == ["bob@example.org"]
    assert message.message["To"] == "bob@example.org"
    assert message.subject == "Quarterly report"
    assert message.text() == "Hello Bob,\n\nthe numbers are in.\n"
    assert message.login == "mailer@example.com"
    assert message.mail_from == "mailer@example.com"
    assert smtp.auth_attempts and all(ok for _, _, ok in smtp.auth_attempts)
    assert PASSWORD not in str(r)


async def test_non_ascii_subject_and_body(pilot, alice, run, smtp) -> None:
    await _creds(pilot, alice)
    r = await run(
        pilot, alice, MAIL, _mail(smtp.port, subject="Grüße – ok ✓", body="Zoë says héllo\n")
    )
    assert r["type"] == "block_output", r
    [message] = smtp.wait_for_messages(1)
    assert message.subject == "Grüße – ok ✓"
    assert message.text() == "Zoë says héllo\n"


async def test_wrong_password_is_clear_error_without_password(pilot, alice, run, smtp) -> None:
    wrong = "definitely-Wrong-Pa55word"
    await _creds(pilot, alice, password=wrong)
    r = await run(pilot, alice, MAIL, _mail(smtp.port))
    assert r["type"] == "error", r
    assert r["code"] == "block_failed"
    assert "rejected the username or password" in r["message"]
    assert wrong not in str(r) and PASSWORD not in str(r)
    assert smtp.messages == []
    assert smtp.auth_attempts and not any(ok for _, _, ok in smtp.auth_attempts)
    [record] = await pilot.executions.list(alice.id)
    assert record.status == "failed" and wrong not in str(record.error_message)


async def test_header_injection_in_subject_is_rejected(pilot, alice, run, smtp) -> None:
    await _creds(pilot, alice)
    for subject in [
        "Hi\r\nBcc: victim@example.com",
        "Hi\nBcc: victim@example.com",
        "Hi\rX-Injected: 1",
    ]:
        r = await run(pilot, alice, MAIL, _mail(smtp.port, subject=subject))
        assert r["type"] == "error" and r["code"] == "block_failed", r
        assert "subject" in r["message"]
    assert smtp.messages == [] and smtp.auth_attempts == []


async def test_bad_recipients_are_rejected(pilot, alice, run, smtp) -> None:
    await _creds(pilot, alice)
    for to_email in [
        "bob@example.org\r\nBcc: victim@example.com",
        "bob@example.org, victim@example.com",
        "bob@example.org;victim@example.com",
        "Bob <bob@example.org>",
        "no-at-sign",
        "@example.org",
        "bob@",
    ]:
        r = await run(pilot, alice, MAIL, _mail(smtp.port, to_email=to_email))
        assert r["type"] == "error" and r["code"] == "block_failed", (to_email, r)
    assert smtp.messages == [] and smtp.auth_attempts == []


async def test_body_with_smtp_commands_stays_one_message(pilot, alice, run, smtp) -> None:
    await _creds(pilot, alice)
    body = (
        "line\r\n.\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\n"
        "DATA\r\nspoofed\r\n.\r\n"
    )
    r = await run(pilot, alice, MAIL, _mail(smtp.port, body=body))
    assert r["type"] == "block_output", r
    [message] = smtp.wait_for_messages(1)
    assert message.rcpt_tos == ["bob@example.org"]
    assert "MAIL FROM:<evil@example.com>" in message.text()
    assert len(smtp.messages) == 1


async def test_smtp_on_loopback_not_allowed_is_blocked(make_pilot, run, smtp) -> None:
    pilot = await make_pilot()  # no allowed hosts: loopback is internal
    alice, _ = await pilot.users.create("alice")
    for server in ("127.0.0.1", "localhost", "::1"):
        await _creds(pilot, alice, host=server)
    for server in ("127.0.0.1", "localhost", "0x7f.1", "::1"):
        r = await run(pilot, alice, MAIL, _mail(smtp.port, smtp_server=server))
        assert r["type"] == "error", (server, r)
        assert r["code"] == "block_failed"
        assert "blocked" in r["message"].lower()
    assert smtp.messages == [] and smtp.auth_attempts == []


async def test_smtp_allowed_on_other_port_only_is_blocked(make_pilot, run, smtp) -> None:
    pilot = await make_pilot(http_allowed_hosts=(f"127.0.0.1:{smtp.port + 1}",))
    alice, _ = await pilot.users.create("alice")
    await _creds(pilot, alice)
    r = await run(pilot, alice, MAIL, _mail(smtp.port))
    assert r["type"] == "error" and "blocked" in r["message"].lower(), r
    assert smtp.auth_attempts == []


async def test_smtp_server_rejecting_message_is_block_error(pilot, alice, run, smtp) -> None:
    await _creds(pilot, alice)
    smtp.reject_next("554 5.7.1 Spam detected")
    r = await run(pilot, alice, MAIL, _mail(smtp.port))
    assert r["type"] == "error" and r["code"] == "block_failed", r
    assert "Could not send" in r["message"]
    assert PASSWORD not in str(r)


async def test_unreachable_smtp_port_is_block_error(pilot, alice, run) -> None:
    await _creds(pilot, alice)
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    r = await run(pilot, alice, MAIL, _mail(closed_port))
    assert r["type"] == "error" and r["code"] == "block_failed", r


async def test_needs_smtp_credentials(pilot, alice, run, smtp) -> None:
    r = await run(pilot, alice, MAIL, _mail(smtp.port))
    assert r["type"] == "setup_requirements", r
    missing = r["setup_info"]["user_readiness"]["missing_credentials"]["credentials"]
    assert missing["provider"] == "smtp" and missing["type"] == "user_password"
    assert smtp.auth_attempts == []


# --------------------------------------------------------------------------- TLS


def _self_signed(tmp: Path, names: list[str], ips: list[str]) -> tuple[Path, Path]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (names or ips)[0])])
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _StartTLSServer:
    """An aiosmtpd server offering STARTTLS with a given certificate; records AUTH attempts."""

    def __init__(self, cert: Path, key: Path) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.auth_attempts: list[str] = []
        self.tls_sessions: list[bool] = []
        self.messages: list[bytes] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        outer = self

        def authenticate(server, session, envelope, mechanism, auth_data):  # noqa: ANN001
            outer.auth_attempts.append(mechanism)
            outer.tls_sessions.append(session.ssl is not None)
            return AuthResult(success=True, handled=False, auth_data=auth_data)

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802
                outer.messages.append(envelope.content)
                return "250 OK"

        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self._controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=False,
            authenticator=authenticate,
            auth_require_tls=False,
        )
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


@pytest.fixture
def tls_server_factory(tmp_path: Path):
    servers: list[_StartTLSServer] = []

    def make(names: list[str], ips: list[str]) -> tuple[_StartTLSServer, Path]:
        cert, key = _self_signed(tmp_path, names, ips)
        server = _StartTLSServer(cert, key)
        servers.append(server)
        return server, cert

    yield make
    for server in servers:
        server.stop()


async def test_starttls_with_untrusted_certificate_never_sends_password(
    pilot, alice, run, tls_server_factory
) -> None:
    # Regression: smtplib's starttls() without a context does not verify the certificate,
    # so anyone in the middle could present any certificate and collect the password.
    server, _ = tls_server_factory([], ["127.0.0.1"])
    await _creds(pilot, alice)
    r = await run(pilot, alice, MAIL, _mail(server.port))
    assert r["type"] == "error" and r["code"] == "block_failed", r
    assert "certificate" in r["message"].lower()
    assert server.auth_attempts == [] and server.messages == []


async def test_starttls_with_wrong_certificate_name_never_sends_password(
    pilot, alice, run, tls_server_factory, monkeypatch
) -> None:
    server, cert = tls_server_factory(["mail.example.com"], [])
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted, but for another name
    await _creds(pilot, alice)
    r = await run(pilot, alice, MAIL, _mail(server.port))
    assert r["type"] == "error" and r["code"] == "block_failed", r
    assert server.auth_attempts == [] and server.messages == []


async def test_starttls_with_trusted_certificate_sends_over_tls(
    pilot, alice, run, tls_server_factory, monkeypatch
) -> None:
    server, cert = tls_server_factory([], ["127.0.0.1"])
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    await _creds(pilot, alice)
    r = await run(pilot, alice, MAIL, _mail(server.port))
    assert r["type"] == "block_output", r
    assert server.auth_attempts and all(server.tls_sessions)
    assert len(server.messages) == 1


def test_password_is_not_sent_in_plaintext_to_untrusted_servers(smtp) -> None:
    # Regression: with no STARTTLS on offer (or stripped by an attacker) the password went
    # out in the clear. Only operator-allowed hosts (local relays) may receive it unencrypted.
    from blockpilot.blocks.library.email import _send_mail
    from blockpilot.credentials.models import UserPasswordCredentials
    from blockpilot.errors import BlockExecutionError

    creds = UserPasswordCredentials(
        provider="smtp", username="mailer@example.com", password=PASSWORD
    )
    with pytest.raises(BlockExecutionError) as caught:
        _send_mail(
            "127.0.0.1",
            "mail.example.com",
            smtp.port,
            creds,
            "bob@example.org",
            "s",
            "b",
            allow_plaintext=False,
        )
    assert "STARTTLS" in caught.value.message and PASSWORD not in caught.value.message
    assert smtp.auth_attempts == [] and smtp.messages == []
    _send_mail(
        "127.0.0.1",
        "127.0.0.1",
        smtp.port,
        creds,
        "bob@example.org",
        "s",
        "b",
        allow_plaintext=True,
    )
    assert len(smtp.wait_for_messages(1)) == 1
