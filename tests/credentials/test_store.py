"""Encryption at rest of the credential store, on the real database (SQLite or PostgreSQL)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update

from blockpilot.blocks.library.llm import AITextGeneratorBlock
from blockpilot.credentials.crypto import KeyRing
from blockpilot.errors import DecryptionError, EncryptionKeyError
from blockpilot.pilot import Pilot
from blockpilot.storage.tables import credentials as table
from tests.bp_database import is_postgresql, stored_bytes

SECRET = "sk-test-store-secret-0123456789abcdef"


def _api_key(value: str = SECRET, provider: str = "openai", **extra: Any) -> dict[str, Any]:
    return {"provider": provider, "type": "api_key", "api_key": value, **extra}


def _key_of(settings) -> str:
    return settings.encryption_keys[0].get_secret_value()


async def _secret_column(pilot: Pilot, cred_id: str) -> bytes:
    async with pilot.engine.connect() as conn:
        return bytes(await conn.scalar(select(table.c.secret).where(table.c.id == cred_id)))


async def _set_secret(pilot: Pilot, cred_id: str, token: bytes) -> None:
    async with pilot.engine.begin() as conn:
        await conn.execute(update(table).where(table.c.id == cred_id).values(secret=token))


async def test_secret_is_not_stored_in_plaintext(pilot, alice) -> None:
    meta = await pilot.add_credentials(alice.id, _api_key())
    token = await _secret_column(pilot, meta.id)
    assert SECRET.encode() not in token
    creds = await pilot.credential_store.get(alice.id, meta.id)
    assert creds.api_key.get_secret_value() == SECRET
    await pilot.close()  # flush everything to the database file
    raw = await stored_bytes(pilot)  # the SQLite file, or every PostgreSQL column
    assert meta.id.encode() in raw  # the sweep does see the row
    assert SECRET.encode() not in raw
    assert b"sk-test-store" not in raw


async def test_ciphertext_copied_to_another_row_does_not_decrypt(pilot, alice) -> None:
    a = await pilot.add_credentials(alice.id, _api_key(SECRET))
    b = await pilot.add_credentials(alice.id, _api_key("sk-other-value-000000000000000"))
    async with pilot.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE credentials SET secret = (SELECT secret FROM credentials WHERE id = :a) "
                "WHERE id = :b"
            ),
            {"a": a.id, "b": b.id},
        )
    with pytest.raises(DecryptionError) as caught:
        await pilot.credential_store.get(alice.id, b.id)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
    assert (await pilot.credential_store.get(alice.id, a.id)).api_key.get_secret_value() == SECRET


async def test_row_moved_to_another_user_does_not_decrypt(pilot, alice, bob) -> None:
    a = await pilot.add_credentials(alice.id, _api_key())
    async with pilot.engine.begin() as conn:
        await conn.execute(update(table).where(table.c.id == a.id).values(user_id=bob.id))
    assert await pilot.credential_store.get(alice.id, a.id) is None
    with pytest.raises(DecryptionError):
        await pilot.credential_store.get(bob.id, a.id)


async def test_tampered_byte_does_not_decrypt(pilot, alice) -> None:
    meta = await pilot.add_credentials(alice.id, _api_key())
    original = await _secret_column(pilot, meta.id)
    # version, key id, nonce, ciphertext and tag bytes
    for position in (0, 1, 5, 17, 30, -17, -1):
        token = bytearray(original)
        token[position] ^= 0x01
        await _set_secret(pilot, meta.id, bytes(token))
        with pytest.raises(DecryptionError):
            await pilot.credential_store.get(alice.id, meta.id)
    await _set_secret(pilot, meta.id, original)
    assert (
        await pilot.credential_store.get(alice.id, meta.id)
    ).api_key.get_secret_value() == SECRET


async def test_truncated_or_garbage_token_does_not_decrypt(pilot, alice) -> None:
    meta = await pilot.add_credentials(alice.id, _api_key())
    for token in (b"", b"\x01", b"\x01" + b"\x00" * 10, b"garbage" * 10):
        await _set_secret(pilot, meta.id, token)
        with pytest.raises(DecryptionError):
            await pilot.credential_store.get(alice.id, meta.id)


async def test_tampered_credential_in_run_block_is_credentials_unavailable(pilot, alice) -> None:
    meta = await pilot.add_credentials(alice.id, _api_key())
    token = bytearray(await _secret_column(pilot, meta.id))
    token[-3] ^= 0xFF
    await _set_secret(pilot, meta.id, bytes(token))
    # Listing metadata needs no decryption, so the credential is still matched …
    assert [m.id for m in await pilot.credential_store.list_meta(alice.id)] == [meta.id]
    response = await pilot.call_tool(
        "run_block",
        {"block_id": AITextGeneratorBlock.id, "input_data": {"prompt": "hi"}},
        user_id=alice.id,
    )
    data = response.model_dump(mode="json")
    # … but running fails cleanly, without any secret in the answer.
    assert data["type"] == "error" and data["code"] == "credentials_unavailable", data
    assert SECRET not in str(data)


async def test_open_with_a_different_key_fails_loudly(settings_factory, alice, pilot) -> None:
    await pilot.add_credentials(alice.id, _api_key())
    await pilot.close()
    with pytest.raises(EncryptionKeyError) as caught:
        await Pilot.open(settings_factory(encryption_keys=(KeyRing.generate_key(),)))
    assert "BLOCKPILOT_ENCRYPTION_KEYS" in str(caught.value)
    assert SECRET not in str(caught.value)
    # Nothing was touched: the right key still reads the credential.
    reopened = await Pilot.open(settings_factory())
    try:
        [meta] = await reopened.credential_store.list_meta(alice.id)
        creds = await reopened.credential_store.get(alice.id, meta.id)
        assert creds.api_key.get_secret_value() == SECRET
    finally:
        await reopened.close()


async def test_open_with_a_different_key_on_an_empty_store_is_fine(settings_factory, pilot) -> None:
    await pilot.close()
    other = await Pilot.open(settings_factory(encryption_keys=(KeyRing.generate_key(),)))
    await other.close()


async def test_key_rotation(settings_factory) -> None:
    old_settings = settings_factory()
    old = _key_of(old_settings)
    new = KeyRing.generate_key()
    pilot = await Pilot.open(old_settings)
    try:
        alice, _ = await pilot.users.create("alice")
        bob, _ = await pilot.users.create("bob")
        ids = {
            (alice.id, (await pilot.add_credentials(alice.id, _api_key(SECRET))).id): SECRET,
            (
                bob.id,
                (await pilot.add_credentials(bob.id, _api_key("sk-bob-0000000000000000"))).id,
            ): "sk-bob-0000000000000000",
        }
        for i in range(5):
            value = f"sk-extra-{i:02d}-000000000000000"
            ids[(alice.id, (await pilot.add_credentials(alice.id, _api_key(value))).id)] = value
    finally:
        await pilot.close()

    both = await Pilot.open(settings_factory(encryption_keys=(new, old)))
    try:
        store = both.credential_store
        assert await store.count_needing_rotation() == len(ids)
        # Readable with the old key still in the ring, before rotation.
        for (user_id, cred_id), value in ids.items():
            assert (await store.get(user_id, cred_id)).api_key.get_secret_value() == value
        assert await store.rotate_keys(batch_size=3) == len(ids)
        assert await store.count_needing_rotation() == 0
        assert await store.rotate_keys() == 0  # idempotent
    finally:
        await both.close()

    only_new = await Pilot.open(settings_factory(encryption_keys=(new,)))
    try:
        for (user_id, cred_id), value in ids.items():
            assert (
                await only_new.credential_store.get(user_id, cred_id)
            ).api_key.get_secret_value() == value
        async with only_new.engine.connect() as conn:
            key_ids = set((await conn.execute(select(table.c.key_id))).scalars())
        assert key_ids == {KeyRing.key_id_of(new)}
    finally:
        await only_new.close()

    with pytest.raises(EncryptionKeyError):
        await Pilot.open(settings_factory(encryption_keys=(old,)))


async def test_dropping_the_old_key_before_rotation_finished_fails_at_start(
    settings_factory,
) -> None:
    # Regression: start-up decrypted only one (arbitrary) row, so a store holding tokens of a
    # key no longer configured opened fine and failed later, mid-run, for some credentials.
    old_settings = settings_factory()
    old, new = _key_of(old_settings), KeyRing.generate_key()
    pilot = await Pilot.open(old_settings)
    try:
        alice, _ = await pilot.users.create("alice")
        first = await pilot.add_credentials(alice.id, _api_key("sk-first-00000000000000"))
        await pilot.add_credentials(alice.id, _api_key("sk-second-0000000000000"))
    finally:
        await pilot.close()
    both = await Pilot.open(settings_factory(encryption_keys=(new, old)))
    try:
        # Re-encrypt only the first row (as an interrupted rotation would leave it).
        creds = await both.credential_store.get(alice.id, first.id)
        await both.credential_store.update(alice.id, creds)
        assert await both.credential_store.count_needing_rotation() == 1
    finally:
        await both.close()
    with pytest.raises(EncryptionKeyError) as caught:
        await Pilot.open(settings_factory(encryption_keys=(new,)))
    assert KeyRing.key_id_of(old) in str(caught.value)


async def test_sqlite_file_is_private(pilot, alice) -> None:
    import os

    await pilot.add_credentials(alice.id, _api_key())
    home = Path(pilot.settings.home)
    if os.name == "posix":
        assert home.stat().st_mode & 0o077 == 0
    if is_postgresql(pilot):  # no file here: PostgreSQL's files belong to its server
        async with pilot.engine.connect() as conn:
            [(provider, type_, secret)] = (
                await conn.execute(text("SELECT provider, type, secret FROM credentials"))
            ).all()
        secret = bytes(secret)
    else:
        with sqlite3.connect(home / "blockpilot.db") as conn:
            [(provider, type_, secret)] = conn.execute(
                "SELECT provider, type, secret FROM credentials"
            ).fetchall()
    assert (provider, type_) == ("openai", "api_key")
    assert SECRET.encode() not in secret
