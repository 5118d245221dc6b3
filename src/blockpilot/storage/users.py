"""Users and their API keys."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from blockpilot.errors import ConflictError, InvalidInputError, NotFoundError, UserNotFoundError
from blockpilot.ids import is_uuid, new_id
from blockpilot.storage.common import aware, utcnow
from blockpilot.storage.sqlite_writer import SQLiteReader, sqlite_file
from blockpilot.storage.tables import api_keys, users

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,99}$")
API_KEY_PREFIX = "bp_"
KEY_RECHECK_SECONDS = 0.5
"""How long this process trusts a cached API key before checking it against the database
again: a key revoked by another process stops working here within this time."""
_KEY_CACHE_SIZE = 10_000


# The query below, for the direct SQLite reader (same columns, same conditions).
_USER_FOR_KEY_SQL = (
    f"SELECT {users.name}.id, {users.name}.name, {users.name}.created_at, "
    f"{api_keys.name}.key_hash, {api_keys.name}.id "
    f"FROM {users.name} JOIN {api_keys.name} ON {api_keys.name}.user_id = {users.name}.id "
    f"WHERE {api_keys.name}.key_hash = ? AND {api_keys.name}.revoked_at IS NULL"
)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """Who a request's API key signs in, and which of their keys it is (policy rules can
    narrow one key: docs/approvals.md)."""

    user: User
    api_key_id: str


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key as listed (never the key itself: only its first characters)."""

    id: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class UserStore:
    """Users, looked up by id or name, and their hashed API keys."""

    def __init__(
        self, engine: AsyncEngine, *, key_recheck_seconds: float = KEY_RECHECK_SECONDS
    ) -> None:
        self._engine = engine
        # API keys checked in the last key_recheck_seconds: key hash -> (owner, when checked).
        # Only active keys are kept; a key revoked here is dropped at once, one revoked by
        # another process is refused here once its entry is older than key_recheck_seconds.
        self._key_recheck = key_recheck_seconds
        # Oldest first, evicted in O(1) (see SessionStore's owner cache).
        self._keys: OrderedDict[str, tuple[KeyOwner, float]] = OrderedDict()
        # Bumped by every revocation here: a lookup that started before it caches nothing.
        self._revocations = 0
        # On a SQLite file the API-key lookup reads directly (see SQLiteReader).
        path = sqlite_file(engine)
        self._reader = None if path is None else SQLiteReader(path)
        self._created_at = users.c.created_at.type.dialect_impl(engine.dialect).result_processor(
            engine.dialect, None
        )

    def close(self) -> None:
        """Release the direct reader's connection (the store stays usable)."""
        if self._reader is not None:
            self._reader.close()

    async def create(self, name: str) -> tuple[User, str]:
        """Create a user and a first API key; the key is returned once and stored hashed."""
        if not _NAME.match(name):
            raise InvalidInputError(
                "User name must be 1-100 characters of letters, digits, '_', '.', '@' or '-', "
                "starting with a letter or digit"
            )
        user = User(id=new_id(), name=name, created_at=utcnow())
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    users.insert().values(id=user.id, name=name, created_at=user.created_at)
                )
        except IntegrityError:
            raise ConflictError(
                f"A user named {name!r} already exists; pick another name"
            ) from None
        key = await self.create_api_key(user.id)
        return user, key

    async def create_api_key(self, user_id: str) -> str:
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        async with self._engine.begin() as conn:
            await conn.execute(
                api_keys.insert().values(
                    id=new_id(),
                    user_id=user_id,
                    prefix=key[:10],
                    key_hash=hash_api_key(key),
                    created_at=utcnow(),
                )
            )
        return key

    async def user_for_api_key(self, key: str) -> User | None:
        """The user owning an active API key, or None (unknown or revoked)."""
        owner = await self.owner_of_api_key(key)
        return None if owner is None else owner.user

    async def owner_of_api_key(self, key: str) -> KeyOwner | None:
        """The user and key id of an active API key, or None (unknown or revoked).

        An active key is remembered for ``key_recheck_seconds`` (0.5 s): a revocation made by
        this process takes effect at once, one made by another process within that time
        (docs/performance.md). Unknown and revoked keys are never remembered.
        """
        digest = hash_api_key(key)
        now = time.monotonic()
        cached = self._keys.get(digest)
        if cached is not None and now - cached[1] < self._key_recheck:
            return cached[0]
        revocations = self._revocations
        owner = await self._lookup(digest)
        if owner is None:
            self._keys.pop(digest, None)
        elif revocations == self._revocations:  # no revocation here while looking it up
            if len(self._keys) >= _KEY_CACHE_SIZE and digest not in self._keys:
                self._keys.popitem(last=False)
            self._keys[digest] = (owner, now)
        return owner

    async def _lookup(self, digest: str) -> KeyOwner | None:
        if self._reader is not None:
            row = self._reader.fetch_one(_USER_FOR_KEY_SQL, (digest,))
            if row is not SQLiteReader.UNAVAILABLE:
                if row is None or not hmac.compare_digest(row[3], digest):
                    return None
                created = self._created_at(row[2]) if self._created_at else row[2]
                user = User(id=row[0], name=row[1], created_at=aware(created) or utcnow())
                return KeyOwner(user, row[4])
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(users, api_keys.c.key_hash, api_keys.c.id.label("api_key_id"))
                    .join(api_keys, api_keys.c.user_id == users.c.id)
                    .where(api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None))
                )
            ).first()
        if row is None or not hmac.compare_digest(row.key_hash, digest):
            return None
        user = User(id=row.id, name=row.name, created_at=aware(row.created_at) or utcnow())
        return KeyOwner(user, row.api_key_id)

    async def api_keys(self, user_id: str) -> list[ApiKeyInfo]:
        """*user_id*'s API keys, oldest first, revoked ones included."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(api_keys)
                    .where(api_keys.c.user_id == user_id)
                    .order_by(api_keys.c.created_at)
                )
            ).all()
        return [
            ApiKeyInfo(r.id, r.prefix, aware(r.created_at) or utcnow(), aware(r.revoked_at))
            for r in rows
        ]

    async def api_key_id(self, user_id: str, id_or_prefix: str) -> str:
        """The id of *user_id*'s active key named by its id or its shown prefix (``bp_…``)."""
        wanted = id_or_prefix.strip()
        found = [
            k
            for k in await self.api_keys(user_id)
            if k.revoked_at is None and wanted and wanted in (k.id, k.prefix)
        ]
        if len(found) != 1:
            raise NotFoundError(
                f"No single active API key {wanted[:40]!r} of this user; "
                "`blockpilot keys list --user USER` shows their ids"
            )
        return found[0].id

    async def revoke_api_key(self, key: str) -> bool:
        """Revoke an active key; False if it is unknown or already revoked.

        This process refuses the key from now on; other processes within
        ``key_recheck_seconds``.
        """
        digest = hash_api_key(key)
        self._revocations += 1
        self._keys.pop(digest, None)
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    update(api_keys)
                    .where(api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None))
                    .values(revoked_at=utcnow())
                )
        finally:
            self._revocations += 1  # lookups that overlapped the UPDATE cache nothing
            self._keys.pop(digest, None)
        return bool(result.rowcount)

    async def find(self, id_or_name: str) -> User | None:
        clause = users.c.name == id_or_name
        if is_uuid(id_or_name):
            clause = or_(clause, users.c.id == id_or_name)
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(users).where(clause))).first()
        return None if row is None else User(row.id, row.name, aware(row.created_at) or utcnow())

    async def get(self, id_or_name: str) -> User:
        user = await self.find(id_or_name)
        if user is None:
            raise UserNotFoundError(
                f"No user {id_or_name!r}; create one with `blockpilot users create NAME`"
            )
        return user

    async def list(self) -> list[User]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(users).order_by(users.c.created_at))).all()
        return [User(r.id, r.name, aware(r.created_at) or utcnow()) for r in rows]
