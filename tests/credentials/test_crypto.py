"""Tests for blockpilot.credentials.crypto."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blockpilot.credentials.crypto import (
    NONCE_BYTES,
    TOKEN_VERSION,
    CredentialCipher,
    KeyRing,
    credential_aad,
    load_or_create_key_file,
)
from blockpilot.errors import DecryptionError, EncryptionKeyError, InvalidInputError

KEY_A = base64.urlsafe_b64encode(bytes(range(32))).decode()
KEY_B = base64.urlsafe_b64encode(bytes(range(100, 132))).decode()
AAD = credential_aad("3f0c6a0e-6d1a-4b8e-9b1e-1f6c2b7a9d10", "a8c1e2f4-0b3d-4e5f-8a9b-0c1d2e3f4a5b")
SECRET = b"sk-live-super-secret-token"

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")


def _key_id(key: str) -> str:
    return hashlib.sha256(base64.urlsafe_b64decode(key)).hexdigest()[:8]


@pytest.fixture()
def cipher() -> CredentialCipher:
    return CredentialCipher(KeyRing.from_strings([KEY_A]))


# --------------------------------------------------------------------------- KeyRing


def test_generate_key_shape() -> None:
    key = KeyRing.generate_key()
    assert len(key) == 44 and key.endswith("=")
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert KeyRing.generate_key() != key


def test_key_ids_and_active_key() -> None:
    ring = KeyRing.from_strings([KEY_B, KEY_A])
    assert ring.active_key_id == _key_id(KEY_B)
    assert ring.key_ids == (_key_id(KEY_B), _key_id(KEY_A))
    assert len(ring) == 2
    assert _key_id(KEY_A) in ring and "00000000" not in ring
    assert KeyRing.key_id_of(KEY_A) == _key_id(KEY_A)


def test_whitespace_around_keys_is_ignored() -> None:
    assert KeyRing.from_strings([f"  {KEY_A}\n"]).active_key_id == _key_id(KEY_A)


def test_duplicate_key_is_collapsed() -> None:
    assert KeyRing.from_strings([KEY_A, KEY_A, KEY_B]).key_ids == (
        _key_id(KEY_A),
        _key_id(KEY_B),
    )


def test_empty_ring_rejected() -> None:
    with pytest.raises(EncryptionKeyError, match="blockpilot keys generate"):
        KeyRing.from_strings([])
    with pytest.raises(EncryptionKeyError):
        KeyRing([])


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("not base64 at all!!", "not url-safe base64"),
        (base64.urlsafe_b64encode(b"k" * 16).decode(), "16 bytes"),
        (base64.urlsafe_b64encode(b"k" * 48).decode(), "48 bytes"),
        (base64.b64encode(b"\xfb\xff" * 16).decode(), "url-safe"),
        (KEY_A[:-1], "base64"),
        ("", "empty"),
    ],
)
def test_malformed_key_names_position(bad: str, fragment: str) -> None:
    with pytest.raises(EncryptionKeyError) as info:
        KeyRing.from_strings([KEY_A, bad])
    message = str(info.value)
    assert "position 2" in message
    assert fragment in message
    assert "blockpilot keys generate" in message
    assert "os.urandom(32)" in message
    assert info.value.details["position"] == 2
    if bad:
        assert bad not in message


def test_malformed_key_at_first_position() -> None:
    with pytest.raises(EncryptionKeyError, match="position 1"):
        KeyRing.from_strings(["short", KEY_A])


def test_non_string_key_rejected() -> None:
    with pytest.raises(EncryptionKeyError, match="position 1"):
        KeyRing.from_strings([b"x" * 44])  # type: ignore[list-item]
    with pytest.raises(EncryptionKeyError):
        KeyRing.from_strings(KEY_A)


def test_raw_key_length_checked() -> None:
    with pytest.raises(EncryptionKeyError, match="position 1"):
        KeyRing([b"x" * 16])


def test_repr_does_not_leak_key_material() -> None:
    ring = KeyRing.from_strings([KEY_A, KEY_B])
    cipher = CredentialCipher(ring)
    raw_a = base64.urlsafe_b64decode(KEY_A)
    for text in (repr(ring), str(ring), repr(cipher), str(cipher)):
        assert KEY_A not in text and KEY_B not in text
        assert raw_a.hex() not in text
        assert repr(raw_a) not in text
    assert _key_id(KEY_A) in repr(ring)


# --------------------------------------------------------------------------- aad


def test_credential_aad_is_unambiguous() -> None:
    assert credential_aad("ab", "c") != credential_aad("a", "bc")
    assert credential_aad("u", "c") != credential_aad("c", "u")
    assert credential_aad("a\0b", "c") != credential_aad("a", "b\0c")
    assert credential_aad("u", "c").startswith(b"blockpilot:cred:v1\0")
    assert credential_aad("u", "c") == credential_aad("u", "c")


@pytest.mark.parametrize(("user", "cred"), [("", "c"), ("u", ""), (None, "c")])
def test_credential_aad_rejects_empty_ids(user: object, cred: str) -> None:
    with pytest.raises(InvalidInputError):
        credential_aad(user, cred)  # type: ignore[arg-type]


@given(a=st.tuples(st.text(), st.text()), b=st.tuples(st.text(), st.text()))
def test_credential_aad_injective(a: tuple[str, str], b: tuple[str, str]) -> None:
    if not all(a) or not all(b):
        return
    assert (credential_aad(*a) == credential_aad(*b)) == (a == b)


# --------------------------------------------------------------------------- cipher


def test_round_trip(cipher: CredentialCipher) -> None:
    token = cipher.encrypt(SECRET, associated_data=AAD)
    assert cipher.decrypt(token, associated_data=AAD) == SECRET


def test_token_layout(cipher: CredentialCipher) -> None:
    token = cipher.encrypt(SECRET, associated_data=AAD)
    assert token[:1] == TOKEN_VERSION == b"\x01"
    assert token[1:5] == bytes.fromhex(_key_id(KEY_A))
    assert len(token) == 1 + 4 + NONCE_BYTES + len(SECRET) + 16
    assert SECRET not in token
    assert cipher.key_id_of(token) == _key_id(KEY_A)


def test_nonces_are_random(cipher: CredentialCipher) -> None:
    tokens = {cipher.encrypt(SECRET, associated_data=AAD) for _ in range(50)}
    assert len(tokens) == 50


def test_empty_plaintext_round_trip(cipher: CredentialCipher) -> None:
    token = cipher.encrypt(b"", associated_data=AAD)
    assert cipher.decrypt(token, associated_data=AAD) == b""


def test_bytearray_and_memoryview_accepted(cipher: CredentialCipher) -> None:
    token = cipher.encrypt(bytearray(SECRET), associated_data=memoryview(AAD))  # type: ignore[arg-type]
    assert cipher.decrypt(bytearray(token), associated_data=AAD) == SECRET  # type: ignore[arg-type]


def test_str_plaintext_is_a_type_error(cipher: CredentialCipher) -> None:
    with pytest.raises(TypeError):
        cipher.encrypt("secret", associated_data=AAD)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "other_aad",
    [
        credential_aad("another-user", "a8c1e2f4-0b3d-4e5f-8a9b-0c1d2e3f4a5b"),
        credential_aad("3f0c6a0e-6d1a-4b8e-9b1e-1f6c2b7a9d10", "another-credential"),
        b"",
    ],
)
def test_moved_ciphertext_fails(cipher: CredentialCipher, other_aad: bytes) -> None:
    token = cipher.encrypt(SECRET, associated_data=AAD)
    with pytest.raises(DecryptionError) as info:
        cipher.decrypt(token, associated_data=other_aad)
    assert "could not be decrypted" in str(info.value)
    assert info.value.code == "decryption_failed"


def test_error_message_contains_no_secrets(cipher: CredentialCipher) -> None:
    token = cipher.encrypt(SECRET, associated_data=AAD)
    tampered = token[:-1] + bytes([token[-1] ^ 1])
    with pytest.raises(DecryptionError) as info:
        cipher.decrypt(tampered, associated_data=AAD)
    text = f"{info.value} {info.value!r} {info.value.details}"
    assert SECRET.decode() not in text
    assert KEY_A not in text
    assert base64.urlsafe_b64decode(KEY_A).hex() not in text
    assert info.value.__cause__ is None


@settings(max_examples=200, deadline=None)
@given(
    plaintext=st.binary(max_size=64),
    position=st.integers(min_value=0),
    mask=st.integers(min_value=1, max_value=255),
)
def test_every_single_byte_flip_is_detected(plaintext: bytes, position: int, mask: int) -> None:
    cipher = CredentialCipher(KeyRing.from_strings([KEY_A]))
    token = cipher.encrypt(plaintext, associated_data=AAD)
    position %= len(token)
    flipped = bytearray(token)
    flipped[position] ^= mask
    with pytest.raises(DecryptionError):
        cipher.decrypt(bytes(flipped), associated_data=AAD)


def test_every_position_flip_exhaustive(cipher: CredentialCipher) -> None:
    token = cipher.encrypt(SECRET, associated_data=AAD)
    for position in range(len(token)):
        flipped = bytearray(token)
        flipped[position] ^= 0x80
        with pytest.raises(DecryptionError):
            cipher.decrypt(bytes(flipped), associated_data=AAD)


def test_truncated_tokens_fail(cipher: CredentialCipher) -> None:
    token = cipher.encrypt(SECRET, associated_data=AAD)
    for length in range(len(token)):
        with pytest.raises(DecryptionError):
            cipher.decrypt(token[:length], associated_data=AAD)
    with pytest.raises(DecryptionError):
        cipher.decrypt(token + b"\0", associated_data=AAD)


def test_non_bytes_token_fails(cipher: CredentialCipher) -> None:
    with pytest.raises(DecryptionError):
        cipher.decrypt("not bytes", associated_data=AAD)  # type: ignore[arg-type]


def test_unknown_key_id(cipher: CredentialCipher) -> None:
    token = CredentialCipher(KeyRing.from_strings([KEY_B])).encrypt(SECRET, associated_data=AAD)
    with pytest.raises(DecryptionError) as info:
        cipher.decrypt(token, associated_data=AAD)
    assert info.value.details["reason"] == "unknown_key_id"
    assert info.value.details["key_id"] == _key_id(KEY_B)
    assert _key_id(KEY_B) in str(info.value)


def test_wrong_key_with_forged_key_id_fails() -> None:
    # A token whose header claims KEY_A but that was sealed with KEY_B.
    token = CredentialCipher(KeyRing.from_strings([KEY_B])).encrypt(SECRET, associated_data=AAD)
    forged = token[:1] + bytes.fromhex(_key_id(KEY_A)) + token[5:]
    with pytest.raises(DecryptionError):
        CredentialCipher(KeyRing.from_strings([KEY_A])).decrypt(forged, associated_data=AAD)


def test_unsupported_version(cipher: CredentialCipher) -> None:
    token = cipher.encrypt(SECRET, associated_data=AAD)
    with pytest.raises(DecryptionError) as info:
        cipher.decrypt(b"\x02" + token[1:], associated_data=AAD)
    assert info.value.details["reason"] == "unsupported_version"


# --------------------------------------------------------------------------- rotation


def test_rotation() -> None:
    old = CredentialCipher(KeyRing.from_strings([KEY_A]))
    both = CredentialCipher(KeyRing.from_strings([KEY_B, KEY_A]))
    new_only = CredentialCipher(KeyRing.from_strings([KEY_B]))

    token = old.encrypt(SECRET, associated_data=AAD)
    assert not old.needs_rotation(token)
    assert both.needs_rotation(token)
    assert both.decrypt(token, associated_data=AAD) == SECRET
    with pytest.raises(DecryptionError):
        new_only.decrypt(token, associated_data=AAD)

    rotated = both.rotate(token, associated_data=AAD)
    assert rotated != token
    assert not both.needs_rotation(rotated)
    assert both.key_id_of(rotated) == _key_id(KEY_B)
    assert new_only.decrypt(rotated, associated_data=AAD) == SECRET
    assert both.decrypt(rotated, associated_data=AAD) == SECRET
    with pytest.raises(DecryptionError):
        old.decrypt(rotated, associated_data=AAD)


def test_rotate_checks_associated_data() -> None:
    old = CredentialCipher(KeyRing.from_strings([KEY_A]))
    both = CredentialCipher(KeyRing.from_strings([KEY_B, KEY_A]))
    token = old.encrypt(SECRET, associated_data=AAD)
    with pytest.raises(DecryptionError):
        both.rotate(token, associated_data=credential_aad("other", "row"))


def test_needs_rotation_on_garbage(cipher: CredentialCipher) -> None:
    with pytest.raises(DecryptionError):
        cipher.needs_rotation(b"\x01abc")


# --------------------------------------------------------------------------- key file


def test_key_file_created_with_safe_permissions(tmp_path: Path) -> None:
    path = tmp_path / "config" / "blockpilot" / "secret.key"
    key = load_or_create_key_file(path)
    assert KeyRing.from_strings([key]).active_key_id == KeyRing.key_id_of(key)
    assert path.read_text() == key + "\n"
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_key_file(path) == key  # stable on reload


@posix_only
def test_key_file_created_0600_despite_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        load_or_create_key_file(tmp_path / "k.key")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600


def test_existing_key_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_text(f"\n{KEY_A}\n\n")
    path.chmod(0o600)
    assert load_or_create_key_file(path) == KEY_A


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_world_or_group_readable_key_file_rejected(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k.key"
    path.write_text(KEY_A + "\n")
    path.chmod(mode)
    with pytest.raises(EncryptionKeyError) as info:
        load_or_create_key_file(path)
    assert f"chmod 600 {path}" in str(info.value)
    assert KEY_A not in str(info.value)


@posix_only
def test_owner_read_only_key_file_accepted(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_text(KEY_A + "\n")
    path.chmod(0o400)
    assert load_or_create_key_file(path) == KEY_A


def test_malformed_key_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    bad = base64.urlsafe_b64encode(b"k" * 16).decode()
    path.write_text(bad + "\n")
    path.chmod(0o600)
    with pytest.raises(EncryptionKeyError) as info:
        load_or_create_key_file(path)
    assert str(path) in str(info.value)
    assert bad not in str(info.value)


def test_key_file_that_is_a_directory_rejected(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.mkdir(mode=0o700)
    with pytest.raises(EncryptionKeyError):
        load_or_create_key_file(path)


def _race_key_file_creation(path: Path, contenders: int) -> list[str]:
    barrier = threading.Barrier(contenders)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(load_or_create_key_file(path))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_concurrent_creation_yields_one_key(tmp_path: Path) -> None:
    for attempt in range(20):
        path = tmp_path / f"run{attempt}" / "secret.key"
        results = _race_key_file_creation(path, 2 if attempt % 2 else 4)
        assert len(set(results)) == 1
        assert path.read_text() == results[0] + "\n"


def test_loser_waits_for_winner_to_write(tmp_path: Path) -> None:
    # Simulate the window between the winner's O_EXCL create and its write.
    path = tmp_path / "k.key"
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)

    def finish() -> None:
        os.write(fd, (KEY_B + "\n").encode())
        os.close(fd)

    timer = threading.Timer(0.2, finish)
    timer.start()
    try:
        assert load_or_create_key_file(path) == KEY_B
    finally:
        timer.join()


def test_empty_key_file_eventually_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import blockpilot.credentials.crypto as crypto

    monkeypatch.setattr(crypto, "_KEY_FILE_WAIT_SECONDS", 0.05)
    path = tmp_path / "k.key"
    path.touch(mode=0o600)
    path.chmod(0o600)
    with pytest.raises(EncryptionKeyError, match="empty"):
        load_or_create_key_file(path)
