"""The database layer on whichever backend the suite runs on (SQLite, or PostgreSQL in CI).

What differs between the two and is easy to get wrong: migrations, JSON and timestamp round
trips, LIKE escaping and case, 64-bit integers, NUL characters, and concurrent
get-or-create (unique constraints deciding races).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from blockpilot.errors import ConflictError
from blockpilot.pilot import Pilot
from blockpilot.storage.engine import create_engine, database_url, is_database_unavailable, migrate
from blockpilot.storage.executions import ExecutionRecord
from blockpilot.storage.tables import executions, metadata
from blockpilot.storage.users import User
from blockpilot.storage.workspaces import WorkspaceStore
from tests.bp_database import is_postgresql


async def test_migrations_build_exactly_the_declared_tables(pilot: Pilot) -> None:
    def differences(sync_connection: Any) -> list[Any]:
        context = MigrationContext.configure(
            sync_connection,
            # SQLite reports every integer column as INTEGER (all are 64-bit there).
            opts={"compare_type": is_postgresql(pilot)},
        )
        return list(compare_metadata(context, metadata))

    async with pilot.engine.connect() as conn:
        assert await conn.run_sync(differences) == []


async def test_migrating_again_changes_nothing(pilot: Pilot) -> None:
    await migrate(pilot.engine)
    await migrate(pilot.engine)
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from blockpilot.storage.engine import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    async with pilot.engine.connect() as conn:
        assert (
            await conn.execute(text("SELECT version_num FROM alembic_version"))
        ).scalars().all() == [head]


async def test_json_round_trips_unchanged(pilot: Pilot, alice: User) -> None:
    session = await pilot.sessions.create(alice.id)
    value = {
        "text": "Grüße 👋 \u202e mixed",
        "nul": "before\x00after",
        "nested": [{"a": [1, 2.5, None, True]}, []],
        "big": 2**62,
        "quote": 'it\'s "quoted" \\ backslash',
    }
    record = ExecutionRecord(
        id=f"copilot-{session.session_id}-json",
        user_id=alice.id,
        session_id=session.session_id,
        block_id="b",
        block_name="B",
        status="running",
        started_at=datetime.now(UTC),
        input_redacted=value,
        credential_ids=["x"],
    )
    await pilot.executions.start(record)
    stored = await pilot.executions.get(alice.id, record.id)
    assert stored is not None
    assert stored.input_redacted == value
    assert stored.credential_ids == ["x"]


async def test_timestamps_come_back_aware_and_equal(pilot: Pilot, alice: User) -> None:
    session = await pilot.sessions.create(alice.id)
    started = datetime(2031, 5, 17, 23, 59, 58, 123456, tzinfo=UTC)
    record = ExecutionRecord(
        id=f"copilot-{session.session_id}-time",
        user_id=alice.id,
        session_id=session.session_id,
        block_id="b",
        block_name="B",
        status="running",
        started_at=started,
        input_redacted={},
    )
    await pilot.executions.start(record)
    stored = await pilot.executions.get(alice.id, record.id)
    assert stored is not None and stored.started_at == started
    assert stored.started_at.utcoffset() == timedelta(0)
    if not is_postgresql(pilot):
        return  # SQLite stores the wall-clock text, so blockpilot only ever writes UTC
    # Another zone is the same instant.
    other = started.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Kolkata"))
    async with pilot.engine.connect() as conn:
        found = await conn.scalar(select(executions.c.id).where(executions.c.started_at == other))
    assert found == record.id


async def test_list_prefix_matches_literally_and_case_sensitively(
    pilot: Pilot, alice: User
) -> None:
    workspace = await pilot.workspaces.get_or_create_workspace(alice.id)
    files = pilot.workspaces.for_workspace(workspace)
    for path in ("/a_b/1.txt", "/aXb/2.txt", "/a%b/3.txt", "/A_B/4.txt", "/a_b.txt"):
        await files.write(path, "x")
    assert [f.path for f in await files.list("/a_b")] == ["/a_b/1.txt"]
    assert [f.path for f in await files.list("/a%b")] == ["/a%b/3.txt"]
    assert [f.path for f in await files.list("/A_B")] == ["/A_B/4.txt"]


async def test_64_bit_integers(pilot: Pilot, alice: User) -> None:
    far = 10**10 + 7  # year 2286: past 32 bits
    meta = await pilot.add_credentials(
        alice.id,
        {
            "provider": "github",
            "type": "oauth2",
            "access_token": "gho_far_future_token_value",
            "access_token_expires_at": far,
            "scopes": ["repo"],
        },
    )
    assert (await pilot.credential_store.get_meta(alice.id, meta.id)).expires_at == far
    store = WorkspaceStore(pilot.engine)
    workspace = await store.get_or_create(alice.id)
    row, _ = await store.upsert_file(
        workspace.id,
        "/huge.bin",
        blob="0" * 32,
        size_bytes=5 * 2**30,
        checksum="0" * 64,
        mime_type="x/y",
    )
    assert row.size_bytes == 5 * 2**30
    assert await store.total_bytes(workspace.id) == 5 * 2**30


async def test_nul_characters_never_break_a_statement(pilot: Pilot, alice: User) -> None:
    # Ids from a model's tool call and block error messages may carry NUL; PostgreSQL text
    # cannot, so the engine maps it (lookups then simply find nothing).
    assert await pilot.credential_store.get(alice.id, "abc\x00def") is None
    assert await pilot.users.find("alice\x00") is None
    assert await pilot.sessions.get(alice.id, "s\x00") is None
    session = await pilot.sessions.create(alice.id)
    record = ExecutionRecord(
        id=f"copilot-{session.session_id}-nul",
        user_id=alice.id,
        session_id=session.session_id,
        block_id="b",
        block_name="B",
        status="running",
        started_at=datetime.now(UTC),
        input_redacted={},
    )
    await pilot.executions.start(record)
    record.status, record.error_message, record.finished_at = (
        "failed",
        "upstream said a\x00b",
        datetime.now(UTC),
    )
    pilot.executions.finish(record)
    stored = await pilot.executions.get(alice.id, record.id)
    assert stored is not None and stored.status == "failed"
    assert stored.error_message in ("upstream said a\x00b", "upstream said a\ufffdb")


async def test_concurrent_get_or_create_gives_one_workspace(pilot: Pilot, alice: User) -> None:
    stores = [WorkspaceStore(pilot.engine) for _ in range(8)]  # no shared cache: real races
    found = await asyncio.gather(*(s.get_or_create(alice.id) for s in stores))
    assert len({w.id for w in found}) == 1


async def test_concurrent_user_creation_has_one_winner(pilot: Pilot) -> None:
    results = await asyncio.gather(
        *(pilot.users.create("carol") for _ in range(6)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, ConflictError) for r in results if isinstance(r, BaseException))


async def test_concurrent_first_migrations_on_an_empty_database(settings_factory, tmp_path) -> None:
    """Several processes starting together on a new database: one migrates, the others wait."""
    url = settings_factory().effective_database_url
    if database_url(url).get_backend_name() == "postgresql":
        url = await _empty_postgres_database(url)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    engines = [create_engine(url) for _ in range(4)]
    try:
        await asyncio.gather(*(migrate(e) for e in engines))
        async with engines[0].connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
            assert await conn.scalar(text("SELECT count(*) FROM process_leases")) == 0
    finally:
        for e in engines:
            await e.dispose()
        if url.startswith("postgresql"):
            await _drop_postgres_database(url)


def test_bare_urls_get_the_async_driver() -> None:
    assert database_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert database_url("postgres://u@h/db").drivername == "postgresql+asyncpg"
    assert database_url("sqlite:////tmp/x.db").drivername == "sqlite+aiosqlite"
    assert database_url("postgresql+asyncpg://u@h/db").drivername == "postgresql+asyncpg"


async def test_an_unreachable_database_is_classified_as_unavailable(tmp_path) -> None:
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    started = time.monotonic()
    try:
        with pytest.raises(Exception) as caught:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert is_database_unavailable(caught.value)
    assert time.monotonic() - started < 10
    assert not is_database_unavailable(ValueError("a bug"))


# -- helpers ------------------------------------------------------------------------------


async def _empty_postgres_database(url: str) -> str:
    import asyncpg

    parsed = database_url(url)
    name = f"{parsed.database}_empty"
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return parsed.set(database=name).render_as_string(hide_password=False)


async def _drop_postgres_database(url: str) -> None:
    import asyncpg

    parsed = database_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        await conn.close()
