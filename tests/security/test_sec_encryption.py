"""Encryption at rest (docs/security.md): tampering, moved ciphertexts, wrong keys, and a
key rotation killed with SIGKILL half-way and resumed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from blockpilot.cli.app import app as cli_app
from blockpilot.credentials.crypto import CredentialCipher, KeyRing, credential_aad
from blockpilot.credentials.models import APIKeyCredentials
from blockpilot.errors import DecryptionError, EncryptionKeyError
from blockpilot.pilot import Pilot
from blockpilot.storage.credentials import _columns, _plaintext
from blockpilot.storage.tables import credentials as table
from tests.bp_database import SyncDatabase, database_env
from tests.security.sec_helpers import CANARIES, GITHUB_ISSUE_ID, LLM_ID, tool_json

SCRIPT = Path(sys.executable).with_name("blockpilot")


async def _secret(pilot: Pilot, cred_id: str) -> bytes:
    async with pilot.engine.connect() as conn:
        return bytes(
            (await conn.execute(select(table.c.secret).where(table.c.id == cred_id))).scalar_one()
        )


async def _set(pilot: Pilot, cred_id: str, **values: Any) -> None:
    async with pilot.engine.begin() as conn:
        await conn.execute(update(table).where(table.c.id == cred_id).values(**values))


async def _llm_run(pilot: Pilot, user_id: str, cred_id: str) -> dict[str, Any]:
    return tool_json(
        await pilot.call_tool(
            "run_block",
            {"block_id": LLM_ID, "input_data": {"prompt": "hi", "credentials": cred_id}},
            user_id=user_id,
        )
    )


async def test_tampered_ciphertext_fails_loudly_and_leaks_nothing(open_pilot: Any) -> None:
    pilot = await open_pilot()
    user, _ = await pilot.users.create("alice")
    secret = CANARIES.new("sk-")
    meta = await pilot.add_credentials(
        user.id, {"provider": "openai", "type": "api_key", "api_key": secret}
    )
    original = await _secret(pilot, meta.id)
    for position in (0, 1, 5, 17, len(original) // 2, len(original) - 1):
        tampered = bytearray(original)
        tampered[position] ^= 0x01
        await _set(pilot, meta.id, secret=bytes(tampered))
        with pytest.raises(DecryptionError) as caught:
            await pilot.credential_store.get(user.id, meta.id)
        CANARIES.saw(
            "decryption error", f"{caught.value.message} {caught.value.details!r} {caught.value!r}"
        )
        data = await _llm_run(pilot, user.id, meta.id)
        assert data["type"] == "error" and data["code"] == "credentials_unavailable", data
        assert "could not be decrypted" in data["message"]
    for truncated in (b"", original[:10], original[:-1]):
        await _set(pilot, meta.id, secret=truncated)
        with pytest.raises(DecryptionError):
            await pilot.credential_store.get(user.id, meta.id)
    await _set(pilot, meta.id, secret=original)
    assert (await pilot.credential_store.get(user.id, meta.id)).secret_values() == [secret]  # type: ignore[union-attr]


async def test_a_ciphertext_moved_to_another_row_or_user_does_not_decrypt(open_pilot: Any) -> None:
    pilot = await open_pilot()
    alice, _ = await pilot.users.create("alice")
    bob, _ = await pilot.users.create("bob")
    alice_secret, alice_other, bob_secret = (
        CANARIES.new("a-"),
        CANARIES.new("a2-"),
        CANARIES.new("b-"),
    )
    a1 = await pilot.add_credentials(
        alice.id, {"provider": "openai", "type": "api_key", "api_key": alice_secret}
    )
    a2 = await pilot.add_credentials(
        alice.id, {"provider": "openai", "type": "api_key", "api_key": alice_other}
    )
    b1 = await pilot.add_credentials(
        bob.id, {"provider": "openai", "type": "api_key", "api_key": bob_secret}
    )
    token = await _secret(pilot, a1.id)
    # alice's token in bob's row: bob can never use alice's key
    await _set(pilot, b1.id, secret=token)
    with pytest.raises(DecryptionError):
        await pilot.credential_store.get(bob.id, b1.id)
    data = await _llm_run(pilot, bob.id, b1.id)
    assert data["code"] == "credentials_unavailable", data
    # alice's token in alice's other row
    await _set(pilot, a2.id, secret=token)
    with pytest.raises(DecryptionError):
        await pilot.credential_store.get(alice.id, a2.id)
    # the whole row handed to bob (user_id changed): still bound to alice
    await _set(pilot, a1.id, user_id=bob.id)
    with pytest.raises(DecryptionError):
        await pilot.credential_store.get(bob.id, a1.id)
    assert await pilot.credential_store.get(alice.id, a1.id) is None


async def test_a_wrong_key_at_start_up_refuses_to_start(settings_factory: Any, home: Path) -> None:
    settings = settings_factory()
    async with await Pilot.open(settings) as pilot:
        user, _ = await pilot.users.create("alice")
        await pilot.add_credentials(
            user.id, {"provider": "openai", "type": "api_key", "api_key": CANARIES.new("sk-")}
        )
    wrong = KeyRing.generate_key()
    with pytest.raises(EncryptionKeyError) as caught:
        await Pilot.open(settings_factory(encryption_keys=(wrong,)))
    CANARIES.saw("key error", caught.value.message)
    assert "cannot decrypt the stored credentials" in caught.value.message
    # a key with the right id but other bytes is impossible to forge here; the old key
    # dropped too early is named
    old = settings.encryption_keys[0].get_secret_value()
    assert (
        KeyRing.key_id_of(old) in str(caught.value.details)
        or "BLOCKPILOT_ENCRYPTION_KEYS" in caught.value.message
    )
    runner = CliRunner()
    for keys in (wrong, f"{wrong},{KeyRing.generate_key()}", "not-a-key", ""):
        env = {"BLOCKPILOT_HOME": str(home), "BLOCKPILOT_ENCRYPTION_KEYS": keys}
        result = await asyncio.to_thread(
            runner.invoke, cli_app, ["credentials", "list", "--user", "alice"], env=env
        )
        CANARIES.saw("cli", result.stdout + result.stderr)
        if keys == "":
            continue  # unset: the key file is used (and there is none for this home's data)
        assert result.exit_code == 5, (keys, result.stdout, result.stderr)
        assert result.stderr.startswith("Error: ") and "Traceback" not in result.stderr
    # nothing was changed: the right key still works
    async with await Pilot.open(settings) as pilot:
        metas = await pilot.credential_store.list_meta((await pilot.users.list())[0].id)
        assert len(metas) == 1


# --------------------------------------------------------------------------- key rotation


def _bulk_credentials(
    database: SyncDatabase, user_id: str, keys: list[str], count: int
) -> dict[str, str]:
    """*count* api-key credentials for *user_id*, encrypted under ``keys`` (first active),
    inserted in one transaction straight into the table."""
    cipher = CredentialCipher(KeyRing.from_strings(keys))
    secrets: dict[str, str] = {}
    rows = []
    now = datetime.now(UTC)
    for index in range(count):
        creds = APIKeyCredentials(
            provider="openai", api_key=f"sk-bulk-{index:06d}-{os.urandom(6).hex()}"
        )
        secrets[creds.id] = creds.api_key.get_secret_value()
        token = cipher.encrypt(_plaintext(creds), associated_data=credential_aad(user_id, creds.id))
        cols = _columns(creds)
        rows.append(
            (
                creds.id,
                user_id,
                cols["provider"],
                cols["type"],
                cols["title"],
                token,
                cipher.key_ring.active_key_id,
                now,
                now,
            )
        )
    database.executemany(
        "INSERT INTO credentials (id, user_id, provider, type, title, secret, key_id, scopes, "
        "is_default, needs_reauth, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, '[]', false, false, ?, ?)",
        rows,
    )
    return secrets


def _count_under(database: SyncDatabase, key_id: str) -> int:
    return int(
        database.execute("SELECT count(*) FROM credentials WHERE key_id = ?", (key_id,))[0][0]
    )


@pytest.mark.slow
async def test_key_rotation_killed_with_sigkill_resumes_and_ends_under_the_new_key_only(
    settings_factory: Any, home: Path
) -> None:
    old, new = KeyRing.generate_key(), KeyRing.generate_key()
    new_id_hex = KeyRing.key_id_of(new)
    settings = settings_factory(encryption_keys=(old,))
    async with await Pilot.open(settings) as pilot:
        user, _ = await pilot.users.create("alice")
        canary = CANARIES.new("sk-")
        kept = await pilot.add_credentials(
            user.id, {"provider": "openai", "type": "api_key", "api_key": canary}
        )
    database = SyncDatabase(settings)  # the SQLite file or the PostgreSQL database, from the side
    total = 8000
    secrets = _bulk_credentials(database, user.id, [old], total)
    secrets[kept.id] = canary
    total += 1
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPILOT_")}
    env.update(
        {
            "BLOCKPILOT_HOME": str(home),
            "BLOCKPILOT_ENCRYPTION_KEYS": f"{new},{old}",
            **database_env(),
        }
    )

    killed_at: list[int] = []
    for _attempt in range(3):  # kill it mid-way (a few times, if it is quick)
        if _count_under(database, new_id_hex) >= total:
            break
        process = subprocess.Popen(
            [str(SCRIPT), "keys", "rotate", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        start = _count_under(database, new_id_hex)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            done = _count_under(database, new_id_hex)
            if done > start:
                os.kill(process.pid, signal.SIGKILL)
                break
            time.sleep(0.002)
        process.wait(30)
        out, err = process.communicate()
        CANARIES.saw("rotate output", (out + err).decode("utf-8", "replace"))
        killed_at.append(_count_under(database, new_id_hex))
        assert process.returncode == -signal.SIGKILL, (process.returncode, err)
    assert killed_at and 0 < killed_at[0] < total, killed_at

    # Between kills every row is readable with the pair of keys: nothing half-written.
    async with await Pilot.open(settings_factory(encryption_keys=(new, old))) as pilot:
        for cred_id, secret in secrets.items():
            creds = await pilot.credential_store.get(user.id, cred_id)
            assert creds is not None and creds.secret_values() == [secret]
    # Resume to the end.
    result = subprocess.run(
        [str(SCRIPT), "keys", "rotate", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    CANARIES.saw("rotate output", result.stdout + result.stderr)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["remaining"] == 0 and summary["active_key_id"] == new_id_hex
    assert summary["rotated"] == total - killed_at[-1]
    assert _count_under(database, new_id_hex) == total
    # The new key alone reads everything; the old key alone reads nothing.
    async with await Pilot.open(settings_factory(encryption_keys=(new,))) as pilot:
        for cred_id, secret in secrets.items():
            creds = await pilot.credential_store.get(user.id, cred_id)
            assert creds is not None and creds.secret_values() == [secret]
    with pytest.raises(EncryptionKeyError):
        await Pilot.open(settings_factory(encryption_keys=(old,)))
    old_only = CredentialCipher(KeyRing.from_strings([old]))
    for cred_id, owner, token in database.execute(
        "SELECT id, user_id, secret FROM credentials LIMIT 50"
    ):
        with pytest.raises(DecryptionError):
            old_only.decrypt(bytes(token), associated_data=credential_aad(owner, cred_id))


class _HookedCipher:
    """The store's cipher, with a hook that runs before each re-encryption."""

    def __init__(self, inner: CredentialCipher, hook: Any) -> None:
        self._inner = inner
        self._hook = hook

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def rotate(self, token: bytes, *, associated_data: bytes) -> bytes:
        self._hook()
        return self._inner.rotate(token, associated_data=associated_data)


async def test_rotation_never_overwrites_a_credential_refreshed_meanwhile(
    settings_factory: Any, home: Path
) -> None:
    """Regression: the rotation re-encrypted what it had read and wrote it back by id, so an
    OAuth refresh stored in between (by the running service) was silently undone."""
    old, new = KeyRing.generate_key(), KeyRing.generate_key()
    async with await Pilot.open(settings_factory(encryption_keys=(old,))) as pilot:
        user, _ = await pilot.users.create("alice")
        stale, fresh = CANARIES.new("stale-"), CANARIES.new("fresh-")
        meta = await pilot.add_credentials(
            user.id, {"provider": "openai", "type": "api_key", "api_key": stale}
        )
    database = SyncDatabase(settings_factory())  # as another process would see it
    async with await Pilot.open(settings_factory(encryption_keys=(new, old))) as pilot:
        store = pilot.credential_store
        refreshed = APIKeyCredentials(id=meta.id, provider="openai", api_key=fresh)
        done = []

        def refresh_elsewhere() -> None:
            # Another process stores a refreshed secret (under the new key) just now.
            if done:
                return
            cipher = CredentialCipher(KeyRing.from_strings([new]))
            token = cipher.encrypt(
                _plaintext(refreshed), associated_data=credential_aad(user.id, meta.id)
            )
            database.execute(
                "UPDATE credentials SET secret = ?, key_id = ? WHERE id = ?",
                (token, KeyRing.key_id_of(new), meta.id),
            )
            done.append(True)

        store._cipher = _HookedCipher(store._cipher, refresh_elsewhere)  # type: ignore[assignment]
        await store.rotate_keys()
        assert done
        creds = await store.get(user.id, meta.id)
        assert creds is not None and creds.secret_values() == [fresh]
        assert await store.count_needing_rotation() == 0


async def test_credential_listings_never_show_secrets(open_pilot: Any) -> None:
    import httpx

    from blockpilot.api import create_app

    pilot = await open_pilot()
    user, key = await pilot.users.create("alice")
    secrets = [CANARIES.new(n) for n in ("sk-", "pw", "hdr", "at", "rt")]
    await pilot.add_credentials(
        user.id, {"provider": "openai", "type": "api_key", "api_key": secrets[0]}
    )
    await pilot.add_credentials(
        user.id,
        {
            "provider": "smtp",
            "type": "user_password",
            "username": "alice",
            "password": secrets[1],
            "host": "smtp.example.com",
        },
    )
    await pilot.add_credentials(
        user.id,
        {
            "provider": "http",
            "type": "host_scoped",
            "host": "api.example.com",
            "headers": {"X-Key": secrets[2]},
        },
    )
    await pilot.add_credentials(
        user.id,
        {
            "provider": "github",
            "type": "oauth2",
            "access_token": secrets[3],
            "refresh_token": secrets[4],
            "scopes": ["repo"],
        },
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(pilot)),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}"},
    ) as client:
        listed = await client.get("/api/v1/credentials")
        CANARIES.saw("credential list", listed.text)
        added = await client.post(
            "/api/v1/credentials",
            json={"provider": "openai", "type": "api_key", "api_key": CANARIES.new("sk-")},
        )
        CANARIES.saw("credential add", added.text)
        details = await client.post(
            "/api/v1/tools/run_block", json={"block_id": GITHUB_ISSUE_ID, "input_data": {}}
        )
        CANARIES.saw("block details", details.text)
    assert listed.status_code == 200 and len(listed.json()["credentials"]) == 4
    runner = CliRunner()
    env = {
        "BLOCKPILOT_HOME": str(pilot.settings.home),
        "BLOCKPILOT_ENCRYPTION_KEYS": pilot.settings.encryption_keys[0].get_secret_value(),
    }
    for args in (
        ["credentials", "list", "--user", "alice"],
        ["--json", "credentials", "list", "--user", "alice"],
    ):
        result = await asyncio.to_thread(runner.invoke, cli_app, args, env=env)
        CANARIES.saw("cli credential list", result.stdout + result.stderr)
        assert result.exit_code == 0
