"""SMTP credentials are bound to their server (issue 11, items 1 and 7).

A model that names another server gets setup requirements naming that server, and the
password never reaches it: checked at the attacker's own SMTP server (aiosmtpd), over
STARTTLS on 587, implicit TLS on 465 and plaintext on an operator-allowed port.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blockpilot.testing import FakeSMTP
from tests import bp_database
from tests.security.sec_helpers import CANARIES, EMAIL_ID, tool_json

USERNAME = "mailer@example.com"
LEGIT = "127.0.0.1"
ATTACKER = "127.0.0.2"


def _cert(tmp: Path, ip: str) -> tuple[Path, Path]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{ip}.pem", tmp / f"{ip}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class AttackerSMTP:
    """An aiosmtpd server that accepts any AUTH and records every attempt it sees."""

    def __init__(self, host: str, port: int, *, cert: Path, key: Path, implicit: bool) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.auth: list[tuple[str, Any]] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)

        def authenticate(server, session, envelope, mechanism, auth_data):  # noqa: ANN001
            self.auth.append((mechanism, auth_data))
            return AuthResult(success=True, handled=False, auth_data=auth_data)

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802
                return "250 OK"

        options: dict[str, Any] = {"ssl_context": context} if implicit else {"tls_context": context}
        self._controller = Controller(
            Handler(),
            hostname=host,
            port=port,
            authenticator=authenticate,
            auth_require_tls=False,
            **options,
        )
        try:
            self._controller.start()
        except (OSError, RuntimeError) as exc:
            pytest.skip(f"cannot listen on {host}:{port} here ({exc})")

    def stop(self) -> None:
        self._controller.stop()


@pytest.fixture
def attacker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[int, AttackerSMTP]]:
    """The attacker's servers on 127.0.0.2:465 (implicit TLS) and :587 (STARTTLS), with a
    certificate this process trusts: TLS itself is no obstacle, only the binding is."""
    cert, key = _cert(tmp_path, ATTACKER)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    servers = {
        465: AttackerSMTP(ATTACKER, 465, cert=cert, key=key, implicit=True),
        587: AttackerSMTP(ATTACKER, 587, cert=cert, key=key, implicit=False),
    }
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture
def legit() -> Iterator[tuple[FakeSMTP, str]]:
    password = CANARIES.new("smtp")
    with FakeSMTP(username=USERNAME, password=password, host=LEGIT) as server:
        yield server, password


def _mail(server: str | None = None, port: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"to_email": "bob@example.org", "subject": "Hi", "body": "Hello\n"}
    if server is not None:
        data["smtp_server"] = server
    if port is not None:
        data["smtp_port"] = port
    return data


async def _run(pilot: Any, user: Any, input_data: dict[str, Any]) -> dict[str, Any]:
    arguments = {"block_id": EMAIL_ID, "input_data": input_data}
    return tool_json(await pilot.call_tool("run_block", arguments, user_id=user.id))


async def _bound_credential(pilot: Any, user: Any, password: str, host: str) -> str:
    meta = await pilot.add_credentials(
        user.id,
        {
            "provider": "smtp",
            "type": "user_password",
            "username": USERNAME,
            "password": password,
            "host": host,
        },
    )
    return meta.id


async def test_smtp_auth_never_reaches_a_server_the_model_names(
    open_pilot: Any, legit: tuple[FakeSMTP, str], attacker: dict[int, AttackerSMTP]
) -> None:
    server, password = legit
    pilot = await open_pilot(allowed=(LEGIT, ATTACKER))
    alice, _ = await pilot.users.create("alice")
    cred_id = await _bound_credential(pilot, alice, password, f"{LEGIT}:{server.port}")

    for port in (465, 587):
        for named in (None, cred_id):  # matched by the server, or named by id
            data = _mail(ATTACKER, port)
            if named:
                data["credentials"] = {"id": named, "provider": "smtp", "type": "user_password"}
            result = await _run(pilot, alice, data)
            assert result["type"] == "setup_requirements", result
            missing = result["setup_info"]["user_readiness"]["missing_credentials"]
            assert missing["credentials"]["host"] == f"{ATTACKER}:{port}", missing
        assert attacker[port].auth == [], f"AUTH reached the attacker on port {port}"
    # The bound server still works, named or not.
    assert (await _run(pilot, alice, _mail()))["type"] == "block_output"
    assert (await _run(pilot, alice, _mail(LEGIT, server.port)))["type"] == "block_output"
    assert [login for _, login, ok in server.auth_attempts if ok] == [USERNAME, USERNAME]
    # Control: the attacker's servers do collect whatever reaches them (465 and 587).
    from blockpilot.blocks.library.email import _send_mail
    from blockpilot.credentials.models import UserPasswordCredentials

    decoy = UserPasswordCredentials(provider="smtp", username="decoy", password="decoy-pw")
    for port in (465, 587):
        await asyncio.to_thread(
            _send_mail,
            ATTACKER,
            ATTACKER,
            port,
            decoy,
            "b@example.org",
            "s",
            "b",
            allow_plaintext=False,
        )
        assert [m for m, _ in attacker[port].auth] == ["PLAIN"]


async def test_a_credential_bound_to_a_host_only_still_stays_on_that_host(
    open_pilot: Any, legit: tuple[FakeSMTP, str], attacker: dict[int, AttackerSMTP]
) -> None:
    server, password = legit
    pilot = await open_pilot(allowed=(LEGIT, ATTACKER))
    alice, _ = await pilot.users.create("alice")
    await _bound_credential(pilot, alice, password, LEGIT)
    for port in (465, 587):
        result = await _run(pilot, alice, _mail(ATTACKER, port))
        assert result["type"] == "setup_requirements", result
        assert attacker[port].auth == []
    result = await _run(pilot, alice, _mail(LEGIT, server.port))
    assert result["type"] == "block_output", result


async def test_smtp_credentials_need_a_valid_server(open_pilot: Any) -> None:
    from blockpilot.errors import InvalidInputError

    pilot = await open_pilot()
    alice, _ = await pilot.users.create("alice")
    base = {"provider": "smtp", "type": "user_password", "username": "u", "password": "pw-123456"}
    for host in (None, "", "smtp://x.example.com", "*.example.com", "a b", "x.com:0", "h/p"):
        data = dict(base) if host is None else {**base, "host": host}
        with pytest.raises(InvalidInputError) as caught:
            await pilot.add_credentials(alice.id, data)
        assert "host" in caught.value.message.lower()
        assert "pw-123456" not in str(
            caught.value.to_dict() if hasattr(caught.value, "to_dict") else caught.value
        )
    meta = await pilot.add_credentials(alice.id, {**base, "host": "SMTP.Example.com:587"})
    assert meta.host == "smtp.example.com:587"


async def test_smtp_credentials_stored_before_the_binding_are_never_used(
    open_pilot: Any, legit: tuple[FakeSMTP, str]
) -> None:
    """A row from before the binding (no host) matches nothing until its host is confirmed."""
    from blockpilot.credentials.models import UserPasswordCredentials

    server, password = legit
    pilot = await open_pilot(allowed=(LEGIT,))
    alice, _ = await pilot.users.create("alice")
    old = UserPasswordCredentials(provider="smtp", username=USERNAME, password=password)
    await pilot.credential_store.add(alice.id, old)  # as the store held it before 0004
    [meta] = await pilot.credential_store.list_meta(alice.id)
    assert meta.needs_host and meta.host is None

    result = await _run(pilot, alice, _mail(LEGIT, server.port))
    assert result["type"] == "setup_requirements", result
    assert server.auth_attempts == []

    confirmed = await pilot.set_credential_host(alice.id, old.id, f"{LEGIT}:{server.port}")
    assert confirmed.host == f"{LEGIT}:{server.port}" and not confirmed.needs_host
    result = await _run(pilot, alice, _mail(LEGIT, server.port))
    assert result["type"] == "block_output", result


async def test_auth_blobs_echoed_in_smtp_errors_are_redacted(open_pilot: Any) -> None:
    """Item 7: a server echoing AUTH PLAIN / AUTH LOGIN data into its replies."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    password = CANARIES.new("smtp")
    plain = base64.b64encode(f"\0{USERNAME}\0{password}".encode()).decode()
    login_user = base64.b64encode(USERNAME.encode()).decode()
    login_pass = base64.b64encode(password.encode()).decode()
    seen: list[str] = []

    def authenticate(server, session, envelope, mechanism, auth_data):  # noqa: ANN001
        seen.append(mechanism)
        return AuthResult(success=True, handled=False, auth_data=auth_data)

    class EchoHandler:
        async def handle_MAIL(self, server, session, envelope, address, options):  # noqa: ANN001, N802
            return f"550 5.7.1 refused after AUTH {plain} {login_user} {login_pass}"

    import socket

    with socket.socket() as sock:
        sock.bind((LEGIT, 0))
        port = sock.getsockname()[1]
    controller = Controller(
        EchoHandler(),
        hostname=LEGIT,
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        pilot = await open_pilot(allowed=(LEGIT,))
        alice, _ = await pilot.users.create("alice")
        await _bound_credential(pilot, alice, password, f"{LEGIT}:{port}")
        result = await _run(pilot, alice, _mail())
    finally:
        controller.stop()
    assert seen, "the block never authenticated"
    assert result["type"] == "error", result
    text = str(result)
    for blob in (plain, plain.rstrip("="), login_user, login_pass):
        assert blob not in text
    [record] = await pilot.executions.list(alice.id)
    for blob in (plain, plain.rstrip("="), login_user, login_pass):
        assert blob not in str(record.error_message)


async def test_migration_0004_marks_host_less_smtp_rows(open_pilot: Any) -> None:
    """Rows stored before the binding come out of 0004 marked (SQLite and PostgreSQL)."""
    import importlib

    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    from blockpilot.credentials.models import APIKeyCredentials, UserPasswordCredentials

    pilot = await open_pilot()
    alice, _ = await pilot.users.create("alice")
    store = pilot.credential_store
    old = UserPasswordCredentials(provider="smtp", username=USERNAME, password="old-pw-123")
    bound = UserPasswordCredentials(
        provider="smtp", username=USERNAME, password="new-pw-123", host="smtp.example.com"
    )
    other = APIKeyCredentials(provider="openai", api_key="sk-other-123456")
    for creds in (old, bound, other):
        await store.add(alice.id, creds)
    migration = importlib.import_module(
        "blockpilot.storage.migrations.versions.0004_smtp_host_binding"
    )

    def upgrade(connection: Any) -> None:
        with Operations.context(MigrationContext.configure(connection)):
            migration.upgrade()

    async with pilot.engine.begin() as conn:
        await conn.run_sync(upgrade)
    metas = {m.id: m for m in await store.list_meta(alice.id)}
    assert metas[old.id].needs_reauthorization and metas[old.id].needs_host
    assert not metas[bound.id].needs_reauthorization and not metas[bound.id].needs_host
    assert not metas[other.id].needs_reauthorization
    # Confirming the host clears the mark.
    confirmed = await pilot.set_credential_host(alice.id, old.id, "smtp.example.com:465")
    assert not confirmed.needs_reauthorization and confirmed.host == "smtp.example.com:465"
    assert (await store.get(alice.id, old.id)).host == "smtp.example.com:465"  # type: ignore[union-attr]


async def test_set_host_over_http_and_cli(open_pilot: Any) -> None:
    import httpx
    from typer.testing import CliRunner

    from blockpilot.api import create_app
    from blockpilot.cli.app import app as cli_app
    from blockpilot.credentials.models import APIKeyCredentials, UserPasswordCredentials

    pilot = await open_pilot()
    alice, key = await pilot.users.create("alice")
    bob, _ = await pilot.users.create("bob")
    password = CANARIES.new("smtp")
    old = UserPasswordCredentials(provider="smtp", username=USERNAME, password=password)
    await pilot.credential_store.add(alice.id, old)
    api_key = APIKeyCredentials(provider="openai", api_key="sk-not-bound-123456")
    await pilot.credential_store.add(alice.id, api_key)
    transport = httpx.ASGITransport(app=create_app(pilot))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {key}"}
    ) as http:
        url = f"/api/v1/credentials/{old.id}"
        listed = (await http.get("/api/v1/credentials")).json()["credentials"]
        assert [c["needs_host"] for c in listed if c["id"] == old.id] == [True]
        for body in ({"host": "smtp://x"}, {"host": 5}, {"hots": "x.com"}, {}):
            answer = await http.patch(url, json=body)
            assert answer.status_code == 422, body
            assert answer.json()["error"]["code"] == "invalid_input", body
        answer = await http.patch(f"/api/v1/credentials/{api_key.id}", json={"host": "x.com"})
        assert answer.status_code == 422, answer.text
        answer = await http.patch(url, json={"host": "smtp.example.com:587"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["host"] == "smtp.example.com:587"
        assert not answer.json()["needs_host"]
        assert password not in answer.text
    # Another user's id is not found.
    with pytest.raises(Exception) as caught:
        await pilot.set_credential_host(bob.id, old.id, "evil.example.com")
    assert getattr(caught.value, "code", "") == "credential_not_found"

    env = {
        "BLOCKPILOT_HOME": str(pilot.settings.home),
        "BLOCKPILOT_ENCRYPTION_KEYS": pilot.settings.encryption_keys[0].get_secret_value(),
    }
    env.update(bp_database.database_env())

    def cli(*args: str) -> Any:
        return CliRunner().invoke(cli_app, list(args), env=env)

    result = await asyncio.to_thread(
        cli, "credentials", "set-host", "--user", "alice", old.id, "mail.example.com"
    )
    assert result.exit_code == 0, result.output
    assert '"host": "mail.example.com"' in result.stdout and password not in result.stdout
    result = await asyncio.to_thread(
        cli, "credentials", "set-host", "--user", "alice", old.id, "mail.example.com/x"
    )
    assert result.exit_code == 2 and "Error:" in result.stderr, result.output
