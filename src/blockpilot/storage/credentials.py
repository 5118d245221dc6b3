"""Per-user credentials, encrypted at rest with AES-256-GCM.

Public metadata lives in plain columns so matching never decrypts anything; the whole
credential (secrets included) is one encrypted token whose associated data binds the user
id and the credential id, so a token copied to another row does not decrypt.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr, ValidationError
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from blockpilot.credentials.crypto import CredentialCipher, credential_aad
from blockpilot.credentials.models import Credentials, CredentialsAdapter, CredentialsMeta
from blockpilot.credentials.servers import needs_server
from blockpilot.errors import (
    ConflictError,
    CredentialNotFoundError,
    DecryptionError,
    EncryptionKeyError,
)
from blockpilot.storage.common import aware, utcnow
from blockpilot.storage.sqlite_writer import (
    SQLiteReader,
    engine_writer,
    row_converter,
    sqlite_file,
)
from blockpilot.storage.tables import credentials as table


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


def _plaintext(creds: Credentials) -> bytes:
    return json.dumps(_reveal(creds.model_dump(mode="python")), default=str).encode()


def _columns(creds: Credentials) -> dict[str, Any]:
    meta = creds.meta()
    return {
        "provider": creds.provider,
        "type": creds.type,
        "title": creds.title,
        "host": meta.host,
        "scopes": meta.scopes or [],
        "expires_at": meta.expires_at,
    }


def _meta(row: Any) -> CredentialsMeta:
    return CredentialsMeta(
        id=row.id,
        provider=row.provider,
        type=row.type,
        title=row.title,
        host=row.host,
        scopes=list(row.scopes) if row.type == "oauth2" else None,
        expires_at=row.expires_at,
        is_default=bool(row.is_default),
        needs_reauthorization=bool(row.needs_reauth),
        needs_host=needs_server(row.provider, row.type, row.host),
        created_at=aware(row.created_at),
        last_used_at=aware(row.last_used_at),
    )


_META_COLUMNS = [c for c in table.c if c.name not in ("secret", "key_id")]
_META_NAMES = [c.name for c in _META_COLUMNS]
# The hot queries of a run (list_meta, get, mark_used), for the direct SQLite paths.
_LIST_META_SQL = (
    f"SELECT {', '.join(_META_NAMES)} FROM {table.name} WHERE user_id = ? ORDER BY created_at DESC"
)
_GET_SQL = f"SELECT secret FROM {table.name} WHERE user_id = ? AND id = ?"
_MARK_USED_SQL = (
    f"UPDATE {table.name} SET last_used_at = :now WHERE user_id = :user_id AND id = :id"
)


class CredentialStore:
    """CRUD of one user's credentials; every query is scoped by ``user_id``."""

    def __init__(self, engine: AsyncEngine, cipher: CredentialCipher) -> None:
        self._engine = engine
        self._cipher = cipher
        self.on_secrets: Callable[[list[str]], None] | None = None
        # On a SQLite file the queries every credentialed run makes (list_meta, get,
        # mark_used) go through direct connections (see storage.sqlite_writer): the same
        # reads and the same committed write, without SQLAlchemy + aiosqlite's thread hops.
        # The write goes through the engine's shared writer, so the run's queued final state
        # is committed with it (one commit per run fewer; docs/performance.md).
        path = sqlite_file(engine)
        self._reader = None if path is None else SQLiteReader(path)
        last_used = table.c.last_used_at.type.dialect_impl(engine.dialect)
        process = last_used.bind_processor(engine.dialect)
        self._writer = engine_writer(
            engine,
            {"mark_used": _MARK_USED_SQL},
            {"mark_used": lambda p: {**p, "now": process(p["now"]) if process else p["now"]}},
        )
        self._meta_row = row_converter(table, engine.dialect, _META_NAMES)

    async def close(self) -> None:
        """Release the direct connections (the store stays usable)."""
        if self._reader is not None:
            self._reader.close()
        if self._writer is not None:
            await self._writer.close()

    def _encrypt(self, user_id: str, creds: Credentials) -> tuple[bytes, str]:
        token = self._cipher.encrypt(
            _plaintext(creds), associated_data=credential_aad(user_id, creds.id)
        )
        return token, self._cipher.key_ring.active_key_id

    def _decrypt(self, user_id: str, cred_id: str, token: bytes) -> Credentials:
        plaintext = self._cipher.decrypt(token, associated_data=credential_aad(user_id, cred_id))
        try:
            creds = CredentialsAdapter.validate_json(plaintext)
        except ValidationError:
            raise DecryptionError("Stored credential is corrupt and cannot be used") from None
        if self.on_secrets is not None:
            self.on_secrets(creds.secret_values())
        return creds

    async def add(
        self, user_id: str, creds: Credentials, *, is_default: bool = False
    ) -> CredentialsMeta:
        token, key_id = self._encrypt(user_id, creds)
        now = utcnow()
        try:
            async with self._engine.begin() as conn:
                if is_default:
                    await conn.execute(
                        update(table)
                        .where(table.c.user_id == user_id, table.c.provider == creds.provider)
                        .values(is_default=False)
                    )
                await conn.execute(
                    table.insert().values(
                        id=creds.id,
                        user_id=user_id,
                        secret=token,
                        key_id=key_id,
                        is_default=is_default,
                        needs_reauth=False,
                        created_at=now,
                        updated_at=now,
                        **_columns(creds),
                    )
                )
        except IntegrityError:
            raise ConflictError(f"A credential with id {creds.id} already exists") from None
        return creds.meta(is_default=is_default, created_at=now)

    async def list_meta(self, user_id: str) -> list[CredentialsMeta]:
        """Metadata of the user's credentials, newest first (nothing is decrypted)."""
        if self._reader is not None:
            raw = self._reader.fetch_all(_LIST_META_SQL, (user_id,))
            if raw is not SQLiteReader.UNAVAILABLE:
                return [_meta(self._meta_row(r)) for r in raw]
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(*_META_COLUMNS)
                    .where(table.c.user_id == user_id)
                    .order_by(table.c.created_at.desc())
                )
            ).all()
        return [_meta(r) for r in rows]

    async def get_meta(self, user_id: str, cred_id: str) -> CredentialsMeta | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(*_META_COLUMNS).where(table.c.user_id == user_id, table.c.id == cred_id)
                )
            ).first()
        return None if row is None else _meta(row)

    async def get(self, user_id: str, cred_id: str) -> Credentials | None:
        """The decrypted credential if it belongs to *user_id*, else None."""
        if self._reader is not None:
            found = self._reader.fetch_one(_GET_SQL, (user_id, cred_id))
            if found is not SQLiteReader.UNAVAILABLE:
                return None if found is None else self._decrypt(user_id, cred_id, found[0])
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(table.c.secret).where(table.c.user_id == user_id, table.c.id == cred_id)
                )
            ).first()
        return None if row is None else self._decrypt(user_id, cred_id, row.secret)

    async def update(self, user_id: str, creds: Credentials, *, fence: int | None = None) -> None:
        """Replace the stored secret (e.g. after an OAuth refresh); clears needs-reauth.

        Args:
            fence: The fencing token of the lock lease under which *creds* were refreshed. The
                write happens only if no refresh under a newer lease was stored before it;
                otherwise :class:`~blockpilot.errors.ConflictError` (nothing changes).
        """
        token, key_id = self._encrypt(user_id, creds)
        statement = (
            update(table)
            .where(table.c.user_id == user_id, table.c.id == creds.id)
            .values(
                secret=token,
                key_id=key_id,
                needs_reauth=False,
                updated_at=utcnow(),
                **_columns(creds),
            )
        )
        if fence is not None:
            statement = statement.where(
                or_(table.c.refresh_fence.is_(None), table.c.refresh_fence < fence)
            ).values(refresh_fence=fence)
        async with self._engine.begin() as conn:
            result = await conn.execute(statement)
        if not result.rowcount:
            if fence is not None and await self.get_meta(user_id, creds.id) is not None:
                raise ConflictError(
                    f"Credential {creds.id} was refreshed under a newer lock lease; "
                    "this refresh was not stored"
                )
            raise CredentialNotFoundError(f"Credential {creds.id} not found")

    async def delete(self, user_id: str, cred_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(table).where(table.c.user_id == user_id, table.c.id == cred_id)
            )
        return bool(result.rowcount)

    async def mark_used(self, user_id: str, cred_ids: list[str]) -> None:
        if not cred_ids:
            return
        if self._writer is not None:
            now = utcnow()
            for cred_id in dict.fromkeys(cred_ids):
                await self._writer.write(
                    "mark_used", {"now": now, "user_id": user_id, "id": cred_id}
                )
            return
        async with self._engine.begin() as conn:
            await conn.execute(
                update(table)
                .where(table.c.user_id == user_id, table.c.id.in_(cred_ids))
                .values(last_used_at=utcnow())
            )

    async def mark_needs_reauthorization(self, user_id: str, cred_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(table)
                .where(table.c.user_id == user_id, table.c.id == cred_id)
                .values(needs_reauth=True)
            )

    async def set_default(self, user_id: str, cred_id: str) -> None:
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    select(table.c.provider).where(
                        table.c.user_id == user_id, table.c.id == cred_id
                    )
                )
            ).first()
            if row is None:
                raise CredentialNotFoundError(f"Credential {cred_id} not found")
            await conn.execute(
                update(table)
                .where(table.c.user_id == user_id, table.c.provider == row.provider)
                .values(is_default=table.c.id == cred_id)
            )

    async def count_needing_rotation(self) -> int:
        async with self._engine.connect() as conn:
            value = await conn.scalar(
                select(func.count())
                .select_from(table)
                .where(table.c.key_id != self._cipher.key_ring.active_key_id)
            )
        return int(value or 0)

    async def rotate_keys(self, batch_size: int = 200) -> int:
        """Re-encrypt every token not under the active key; safe to interrupt and resume.

        Safe beside a running service too: each row is replaced only if it still holds the
        token that was re-encrypted (compare-and-swap), so a credential updated meanwhile
        (an OAuth refresh) is never overwritten with its older secret; it is picked up again
        on the next round if it still needs the active key.
        """
        active = self._cipher.key_ring.active_key_id
        rotated = 0
        while True:
            async with self._engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(table.c.id, table.c.user_id, table.c.secret)
                        .where(table.c.key_id != active)
                        .limit(batch_size)
                    )
                ).all()
            if not rows:
                return rotated
            tokens = [
                self._cipher.rotate(row.secret, associated_data=credential_aad(row.user_id, row.id))
                for row in rows
            ]
            async with self._engine.begin() as conn:
                for row, token in zip(rows, tokens, strict=True):
                    result = await conn.execute(
                        update(table)
                        .where(table.c.id == row.id, table.c.secret == row.secret)
                        .values(secret=token, key_id=active)
                    )
                    rotated += result.rowcount

    async def verify_readable(self) -> None:
        """Check every key the stored tokens need is configured and decrypts one of them.

        A wrong key, or an old key dropped before rotation finished, then fails loudly at
        start-up instead of mid-run for some credentials.
        """
        async with self._engine.connect() as conn:
            key_ids = sorted(set((await conn.execute(select(table.c.key_id).distinct())).scalars()))
            samples = [
                (
                    await conn.execute(
                        select(table.c.id, table.c.user_id, table.c.secret)
                        .where(table.c.key_id == key_id)
                        .limit(1)
                    )
                ).one()
                for key_id in key_ids
            ]
        missing = [key_id for key_id in key_ids if key_id not in self._cipher.key_ring]
        if missing:
            raise EncryptionKeyError(
                "The encryption key cannot decrypt the stored credentials: they need key id(s) "
                f"{', '.join(missing)}, which BLOCKPILOT_ENCRYPTION_KEYS does not contain. "
                "Set it to the key used before (or 'new,old' while rotating, and remove the old "
                "key only after rotating); credentials were not touched.",
                details={"missing_key_ids": missing},
            )
        for row in samples:
            self._cipher.decrypt(row.secret, associated_data=credential_aad(row.user_id, row.id))
