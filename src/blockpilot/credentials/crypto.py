"""Encryption at rest for credential secrets (AES-256-GCM).

Token layout (all stored credential ciphertexts)::

    +---------+-------------+---------------+---------------------------+
    | version | key id      | nonce         | ciphertext || GCM tag     |
    | 1 byte  | 4 bytes     | 12 bytes      | len(plaintext) + 16 bytes |
    +---------+-------------+---------------+---------------------------+

* ``version`` is ``0x01``.
* ``key id`` is the first 4 bytes of ``sha256(key)`` (shown to humans as 8 hex
  characters); it selects the key from the :class:`KeyRing` on decryption, so
  old keys can stay in the ring while rows are re-encrypted (:meth:`rotate`).
* The GCM associated data is ``version || key id || associated_data``; callers
  pass :func:`credential_aad` so a ciphertext copied to another user's or
  another credential's row fails to decrypt.

Keys are 32 random bytes written as url-safe base64 with padding (44 chars).
Nothing in this module ever puts key material or plaintext into an exception
message or a ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import stat
import time
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from blockpilot.errors import DecryptionError, EncryptionKeyError, InvalidInputError

__all__ = [
    "KEY_BYTES",
    "NONCE_BYTES",
    "TOKEN_VERSION",
    "CredentialCipher",
    "KeyRing",
    "credential_aad",
    "load_or_create_key_file",
]

TOKEN_VERSION = b"\x01"
KEY_BYTES = 32
KEY_ID_BYTES = 4
NONCE_BYTES = 12
TAG_BYTES = 16
_HEADER_BYTES = len(TOKEN_VERSION) + KEY_ID_BYTES
_MIN_TOKEN_BYTES = _HEADER_BYTES + NONCE_BYTES + TAG_BYTES

_B64_RE = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_AAD_PREFIX = b"blockpilot:cred:v1\0"

_GENERATE_HINT = (
    "Generate one with `blockpilot keys generate`, or with "
    '`python -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"`.'
)
_DECRYPTION_FAILED = (
    "Stored credential could not be decrypted: wrong key, tampered data, "
    "or data moved from another row."
)

#: How long a process that lost the key-file creation race waits for the
#: winner to finish writing the key.
_KEY_FILE_WAIT_SECONDS = 2.0
_MAX_KEY_FILE_BYTES = 4096


def _key_problem(value: object) -> str | None:
    """Why ``value`` is not a valid key string, or ``None`` if it is one.

    The returned text describes only the shape of the value, never its content.
    """
    if not isinstance(value, str):
        return f"expected a string, got {type(value).__name__}"
    if not value:
        return "it is empty"
    if not _B64_RE.fullmatch(value):
        if "+" in value or "/" in value:
            return "it contains '+' or '/'; keys use the url-safe base64 alphabet ('-' and '_')"
        return "it contains characters that are not url-safe base64"
    try:
        raw = base64.urlsafe_b64decode(value)
    except (binascii.Error, ValueError):
        return "it is not valid url-safe base64 (wrong length or padding)"
    if len(raw) != KEY_BYTES:
        return f"it decodes to {len(raw)} bytes; AES-256 needs exactly {KEY_BYTES}"
    if value != base64.urlsafe_b64encode(raw).decode("ascii"):
        return "it is not canonical url-safe base64 (expected 44 characters ending in '=')"
    return None


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:KEY_ID_BYTES]


class KeyRing:
    """Ordered AES-256 keys; the first one is active (used for encryption).

    The other keys only decrypt older data until it has been rotated.
    """

    __slots__ = ("_keys", "_by_id")

    def __init__(self, keys: Iterable[bytes]) -> None:
        ordered: list[tuple[bytes, bytes]] = []
        by_id: dict[bytes, bytes] = {}
        for position, key in enumerate(keys, start=1):
            if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
                raise EncryptionKeyError(
                    f"Encryption key at position {position} must be exactly {KEY_BYTES} "
                    f"raw bytes. {_GENERATE_HINT}",
                    details={"position": position},
                )
            key = bytes(key)
            key_id = _key_id(key)
            existing = by_id.get(key_id)
            if existing is not None:
                if existing == key:
                    continue  # the same key listed twice is harmless
                raise EncryptionKeyError(
                    f"Encryption key at position {position} has the same key id "
                    f"{key_id.hex()} as an earlier, different key; replace one of them. "
                    f"{_GENERATE_HINT}",
                    details={"position": position, "key_id": key_id.hex()},
                )
            by_id[key_id] = key
            ordered.append((key_id, key))
        if not ordered:
            raise EncryptionKeyError(
                f"No encryption key is configured; at least one key is required. {_GENERATE_HINT}"
            )
        self._keys: tuple[tuple[bytes, bytes], ...] = tuple(ordered)
        self._by_id = by_id

    @classmethod
    def from_strings(cls, keys: Iterable[str]) -> KeyRing:
        """Build a ring from url-safe base64 key strings (active key first).

        Surrounding whitespace is ignored.  Raises
        :class:`~blockpilot.errors.EncryptionKeyError` naming the 1-based
        position of the first malformed key, or when ``keys`` is empty.
        """
        if isinstance(keys, str | bytes):
            raise EncryptionKeyError(
                "Encryption keys must be given as a list of key strings, not a single string."
            )
        raw_keys: list[bytes] = []
        for position, value in enumerate(keys, start=1):
            candidate = value.strip() if isinstance(value, str) else value
            problem = _key_problem(candidate)
            if problem is not None:
                raise EncryptionKeyError(
                    f"Encryption key at position {position} is malformed: {problem}. "
                    f"{_GENERATE_HINT}",
                    details={"position": position},
                )
            assert isinstance(candidate, str)
            raw_keys.append(base64.urlsafe_b64decode(candidate))
        return cls(raw_keys)

    @staticmethod
    def generate_key() -> str:
        """A new random key as a 44-character url-safe base64 string."""
        return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")

    @staticmethod
    def key_id_of(key: str) -> str:
        """The 8-hex-character id of a key string (validates the key)."""
        return KeyRing.from_strings([key]).active_key_id

    @property
    def active_key_id(self) -> str:
        """Id (8 hex chars) of the key new data is encrypted with."""
        return self._keys[0][0].hex()

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of all keys, active first."""
        return tuple(key_id.hex() for key_id, _ in self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key_id: object) -> bool:
        if isinstance(key_id, str):
            try:
                key_id = bytes.fromhex(key_id)
            except ValueError:
                return False
        return isinstance(key_id, bytes) and key_id in self._by_id

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={list(self.key_ids)!r})"

    def derived_keys(self, purpose: str) -> tuple[bytes, ...]:
        """32-byte subkeys for *purpose* (e.g. signing setup links), one per key, active first.

        HKDF-SHA256 of each key with *purpose* as the info: the encryption keys themselves
        never sign anything, every node sharing the keys derives the same subkeys, and data
        signed before a key rotation still verifies while the old key stays in the ring.
        """
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        info = b"blockpilot:derived:v1\0" + purpose.encode("utf-8")
        return tuple(
            HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(key)
            for _, key in self._keys
        )

    # Internal accessors used by CredentialCipher.
    def _active(self) -> tuple[bytes, bytes]:
        return self._keys[0]


def credential_aad(user_id: str, credential_id: str) -> bytes:
    """Associated data binding a ciphertext to one user's one credential row.

    Both ids are UTF-8 encoded and length-prefixed (4-byte big endian), so no
    pair of different ids can produce the same bytes.
    """
    parts = []
    for label, value in (("user_id", user_id), ("credential_id", credential_id)):
        if not isinstance(value, str) or not value:
            raise InvalidInputError(
                f"{label} must be a non-empty string to bind credential encryption.",
                details={"field": label},
            )
        encoded = value.encode("utf-8")
        parts.append(len(encoded).to_bytes(4, "big") + encoded)
    return _AAD_PREFIX + b"".join(parts)


def _as_bytes(value: object, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{name} must be bytes, not {type(value).__name__}")


class CredentialCipher:
    """Encrypts and decrypts credential secrets with a :class:`KeyRing`."""

    __slots__ = ("_ring", "_aead")

    def __init__(self, key_ring: KeyRing) -> None:
        if not isinstance(key_ring, KeyRing):
            raise TypeError(f"CredentialCipher needs a KeyRing, not {type(key_ring).__name__}")
        self._ring = key_ring
        self._aead: dict[bytes, AESGCM] = {key_id: AESGCM(key) for key_id, key in key_ring._keys}

    @property
    def key_ring(self) -> KeyRing:
        return self._ring

    def __repr__(self) -> str:
        return f"CredentialCipher(active_key_id={self._ring.active_key_id!r})"

    def encrypt(self, plaintext: bytes, *, associated_data: bytes) -> bytes:
        """Encrypt under the active key; returns a self-describing token."""
        plaintext = _as_bytes(plaintext, "plaintext")
        associated_data = _as_bytes(associated_data, "associated_data")
        key_id, _ = self._ring._active()
        header = TOKEN_VERSION + key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[key_id].encrypt(nonce, plaintext, header + associated_data)
        return header + nonce + sealed

    def decrypt(self, token: bytes, *, associated_data: bytes) -> bytes:
        """Decrypt a token produced by :meth:`encrypt` with any key of the ring.

        Raises :class:`~blockpilot.errors.DecryptionError` on an unknown key id,
        a truncated or tampered token, or mismatching ``associated_data``.
        """
        associated_data = _as_bytes(associated_data, "associated_data")
        token_bytes = self._check_token(token)
        header = token_bytes[:_HEADER_BYTES]
        key_id = header[len(TOKEN_VERSION) :]
        aead = self._aead.get(key_id)
        if aead is None:
            raise DecryptionError(
                f"{_DECRYPTION_FAILED} It was encrypted with key id {key_id.hex()}, which is "
                "not in the configured key ring; add that key back (after the active key) "
                "to read it.",
                details={"reason": "unknown_key_id", "key_id": key_id.hex()},
            )
        nonce = token_bytes[_HEADER_BYTES : _HEADER_BYTES + NONCE_BYTES]
        sealed = token_bytes[_HEADER_BYTES + NONCE_BYTES :]
        try:
            return aead.decrypt(nonce, sealed, header + associated_data)
        except InvalidTag:
            raise DecryptionError(
                _DECRYPTION_FAILED,
                details={"reason": "authentication_failed", "key_id": key_id.hex()},
            ) from None

    def key_id_of(self, token: bytes) -> str:
        """Id (8 hex chars) of the key a token claims to be encrypted with."""
        token_bytes = self._check_token(token)
        return token_bytes[len(TOKEN_VERSION) : _HEADER_BYTES].hex()

    def needs_rotation(self, token: bytes) -> bool:
        """``True`` if ``token`` is not encrypted with the active key.

        Raises :class:`~blockpilot.errors.DecryptionError` for a token that is
        not a well-formed token at all.
        """
        return self.key_id_of(token) != self._ring.active_key_id

    def rotate(self, token: bytes, *, associated_data: bytes) -> bytes:
        """Decrypt with whichever key matches and re-encrypt with the active key."""
        return self.encrypt(
            self.decrypt(token, associated_data=associated_data),
            associated_data=associated_data,
        )

    @staticmethod
    def _check_token(token: object) -> bytes:
        if not isinstance(token, bytes | bytearray | memoryview):
            raise DecryptionError(
                f"{_DECRYPTION_FAILED} (expected bytes, got {type(token).__name__})",
                details={"reason": "malformed"},
            )
        token_bytes = bytes(token)
        if len(token_bytes) < _MIN_TOKEN_BYTES:
            raise DecryptionError(
                _DECRYPTION_FAILED, details={"reason": "truncated", "length": len(token_bytes)}
            )
        if token_bytes[:1] != TOKEN_VERSION:
            raise DecryptionError(
                _DECRYPTION_FAILED,
                details={"reason": "unsupported_version", "version": token_bytes[0]},
            )
        return token_bytes


# --------------------------------------------------------------------------- key file


def _check_key_file_mode(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise EncryptionKeyError(
            f"Encryption key file {path} is not a regular file.", details={"path": str(path)}
        )
    if os.name == "posix" and st.st_mode & 0o077:
        mode = stat.S_IMODE(st.st_mode)
        raise EncryptionKeyError(
            f"Encryption key file {path} is accessible by other users (mode {mode:04o}). "
            f"Restrict it with `chmod 600 {path}` and try again.",
            details={"path": str(path), "mode": f"{mode:04o}"},
        )


def _read_key_file(path: Path) -> str:
    """Read and validate an existing key file.

    Waits briefly while the file is empty, which is what a process sees when it
    lost the creation race and the winner has not written the key yet.
    Raises ``FileNotFoundError`` if the file does not exist.
    """
    deadline = time.monotonic() + _KEY_FILE_WAIT_SECONDS
    while True:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise _unusable_key_file(path, exc) from exc
        try:
            _check_key_file_mode(path, os.fstat(fd))
            data = os.read(fd, _MAX_KEY_FILE_BYTES)
        except OSError as exc:
            raise _unusable_key_file(path, exc) from exc
        finally:
            os.close(fd)
        if data.strip() or time.monotonic() >= deadline:
            break
        time.sleep(0.01)

    text = data.decode("ascii", errors="replace").strip()
    if not text:
        problem: str | None = "it is empty"
    elif "\ufffd" in text:
        problem = "it is not ASCII text"
    else:
        problem = _key_problem(text)
    if problem is not None:
        raise EncryptionKeyError(
            f"Encryption key file {path} does not contain a valid key: {problem}. "
            "If no credentials were ever stored with it, delete the file to have a new "
            f"key generated; otherwise restore the original key. {_GENERATE_HINT}",
            details={"path": str(path)},
        )
    return text


def _unusable_key_file(path: Path, exc: OSError) -> EncryptionKeyError:
    reason = exc.strerror or type(exc).__name__
    return EncryptionKeyError(
        f"Encryption key file {path} cannot be used: {reason}. Check the path and its "
        "permissions (the file should belong to you with mode 600).",
        details={"path": str(path)},
    )


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_or_create_key_file(path: Path) -> str:
    """Return the key stored in ``path``, creating the file with a new key if needed.

    * An existing file must not be accessible by group or others (``chmod 600``),
      and must contain exactly one valid key (surrounding whitespace ignored).
    * A missing file is created with ``O_CREAT | O_EXCL`` and mode 0600 and
      filled with a new key plus a newline; a missing parent directory is
      created with mode 0700.  If another process or thread creates the file at
      the same moment, the loser reads the winner's key, so everybody agrees on
      one key.

    Raises :class:`~blockpilot.errors.EncryptionKeyError` for a bad or
    unreadable file.
    """
    path = Path(path).expanduser()
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass

    key = KeyRing.generate_key()
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return _read_key_file(path)  # lost the race: use the winner's key
    except OSError as exc:
        raise _unusable_key_file(path, exc) from exc
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # independent of the process umask
        view = memoryview((key + "\n").encode("ascii"))
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException as exc:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        if isinstance(exc, OSError):
            raise _unusable_key_file(path, exc) from exc
        raise
    os.close(fd)
    _fsync_directory(path.parent)
    return key
