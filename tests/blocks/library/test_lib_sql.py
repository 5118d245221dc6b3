"""SQL blocks against real SQLite files in the workspace and the dev PostgreSQL cluster."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

import pytest

from blockpilot.blocks.library.sql import SQLExecuteBlock, SQLQueryBlock, parse_connection

from .lib_provider_helpers import add_key, assert_failed, assert_ok, missing_credentials, run

PG_URL = os.environ.get("BLOCKPILOT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:55432/postgres")
PASSWORD = "canary-db-password-0123"
Q, X = SQLQueryBlock.id, SQLExecuteBlock.id


def _sqlite_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "shop.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL, data BLOB);"
        "INSERT INTO items (name, price, data) VALUES ('apple', 1.5, x'00ff'), ('pear', 2.0, NULL),"
        " ('plum', 0.5, NULL);"
    )
    db.commit()
    db.close()
    return path.read_bytes()


@pytest.fixture
async def lite(make_pilot, tmp_path):
    # Destructive blocks ask a person first by default (docs/approvals.md); here they run.
    pilot = await make_pilot(policy_ask_effects=())
    alice, _ = await pilot.users.create("alice")
    bob, _ = await pilot.users.create("bob")
    workspace = await pilot.workspaces.get_or_create_workspace(alice.id)
    await pilot.workspaces.for_workspace(workspace).write("/data/shop.db", _sqlite_bytes(tmp_path))
    await add_key(pilot, alice, "database", "sqlite:///data/shop.db")
    return pilot, alice, bob


async def test_sqlite_query_with_parameters(lite) -> None:
    pilot, alice, _ = lite
    data = {
        "query": "SELECT name, price, data FROM items WHERE price > ? ORDER BY id",
        "parameters": [1],
    }
    out = assert_ok(await run(pilot, alice, Q, data))
    assert out["rows"] == [
        [
            {"name": "apple", "price": 1.5, "data": "base64:AP8="},
            {"name": "pear", "price": 2.0, "data": None},
        ]
    ]
    assert out["columns"] == [["name", "price", "data"]] and out["truncated"] == [False]
    out = assert_ok(await run(pilot, alice, Q, {"query": "SELECT id FROM items", "max_rows": 2}))
    assert out["row_count"] == [2] and out["truncated"] == [True]


async def test_sqlite_query_block_never_writes(lite) -> None:
    pilot, alice, _ = lite
    r = await run(pilot, alice, Q, {"query": "DELETE FROM items"})
    assert_failed(r, "SQLExecuteBlock")
    r = await run(pilot, alice, Q, {"query": "WITH x AS (SELECT 1) DELETE FROM items"})
    assert_failed(r, "changes data")
    out = assert_ok(await run(pilot, alice, Q, {"query": "SELECT count(*) AS n FROM items"}))
    assert out["rows"] == [[{"n": 3}]]


async def test_sqlite_execute_writes_back_to_the_workspace(lite) -> None:
    pilot, alice, _ = lite
    r = await run(
        pilot,
        alice,
        X,
        {"statement": "INSERT INTO items (name, price) VALUES (?, ?)", "parameters": ["fig", 3]},
    )
    out = assert_ok(r)
    assert out["rows_affected"] == [1]
    out = assert_ok(await run(pilot, alice, Q, {"query": "SELECT name FROM items WHERE price = 3"}))
    assert out["rows"] == [[{"name": "fig"}]]


async def test_sqlite_cannot_reach_server_files(lite, tmp_path) -> None:
    pilot, alice, _ = lite
    outside = tmp_path / "server.db"
    sqlite3.connect(outside).close()
    for query in (f"ATTACH DATABASE '{outside}' AS other", "SELECT load_extension('x')"):
        r = await run(
            pilot,
            alice,
            Q if query.startswith("SELECT") else X,
            {"query": query} if query.startswith("SELECT") else {"statement": query},
        )
        assert r["type"] == "error", (query, r)
    for url in ("sqlite:////etc/passwd", "sqlite:///../../etc/passwd", "sqlite:///missing.db"):
        await add_key(pilot, alice, "database", url)
        r = await run(pilot, alice, Q, {"query": "SELECT 1"})
        assert r["type"] == "error", (url, r)
        assert "root:" not in str(r)
    await pilot.workspaces.for_workspace(
        await pilot.workspaces.get_or_create_workspace(alice.id)
    ).write("/notes.txt", "just text")
    await add_key(pilot, alice, "database", "sqlite:///notes.txt")
    assert_failed(await run(pilot, alice, Q, {"query": "SELECT 1"}), "not a SQLite database")


async def test_execute_asks_for_approval_by_default(make_pilot) -> None:
    pilot = await make_pilot()
    alice, _ = await pilot.users.create("alice")
    await add_key(pilot, alice, "database", "sqlite:///data/shop.db")
    r = await run(pilot, alice, X, {"statement": "DELETE FROM items"})
    assert r["type"] == "review_required", r


async def test_missing_credential_and_mysql(lite) -> None:
    pilot, alice, bob = lite
    missing = missing_credentials(await run(pilot, bob, Q, {"query": "SELECT 1"}))
    assert missing["provider"] == "database" and missing["types"] == ["api_key"]
    await add_key(pilot, alice, "database", f"mysql://root:{PASSWORD}@db.example.com/shop")
    r = await run(pilot, alice, Q, {"query": "SELECT 1"})
    assert_failed(r, "MySQL is not supported")
    assert PASSWORD not in str(r)


def test_parse_connection() -> None:
    conn = parse_connection("postgresql://u%40x:p%2Fw@db.example.com:6543/sales?sslmode=require")
    assert (conn.user, conn.password, conn.host, conn.port, conn.database, conn.sslmode) == (
        "u@x",
        "p/w",
        "db.example.com",
        6543,
        "sales",
        "require",
    )
    assert parse_connection("sqlite:///reports/a.db").path == "reports/a.db"
    for bad in (
        "postgresql:///db",
        "ftp://x",
        "postgresql://h/d?sslmode=verify-full",
    ):
        with pytest.raises(ValueError):
            parse_connection(bad)


# -- PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture
async def pg_database():
    asyncpg = pytest.importorskip("asyncpg")
    try:
        admin = await asyncpg.connect(PG_URL, timeout=3)
    except (OSError, asyncpg.PostgresError):
        pytest.skip("no PostgreSQL at BLOCKPILOT_TEST_PG_URL")
    name = f"bp_sql_{uuid.uuid4().hex[:10]}"
    role = f"bp_role_{uuid.uuid4().hex[:8]}"
    await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
    await admin.execute(f"CREATE DATABASE {name} OWNER {role}")
    db = await asyncpg.connect(PG_URL.rsplit("/", 1)[0] + f"/{name}", timeout=3)
    await db.execute(
        f"SET ROLE {role}; CREATE TABLE orders (id serial PRIMARY KEY, customer text,"
        " total numeric, placed date); INSERT INTO orders (customer, total, placed) VALUES"
        " ('ann', 12.50, '2026-01-02'), ('bob', 7, '2026-01-03')"
    )
    await db.close()
    host_port = PG_URL.split("@", 1)[1].split("/", 1)[0]
    yield f"postgresql://{role}:{PASSWORD}@{host_port}/{name}", host_port
    await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await admin.execute(f"DROP ROLE IF EXISTS {role}")
    await admin.close()


async def test_postgres_read_only_query_and_execute(make_pilot, pg_database) -> None:
    url, host_port = pg_database
    pilot = await make_pilot(http_allowed_hosts=(host_port,), policy_ask_effects=())
    alice, _ = await pilot.users.create("alice")
    await add_key(pilot, alice, "database", url)
    data = {
        "query": "SELECT customer, total, placed FROM orders WHERE total > $1 ORDER BY id",
        "parameters": [5],
    }
    out = assert_ok(await run(pilot, alice, Q, data))
    assert out["rows"] == [
        [
            {"customer": "ann", "total": "12.50", "placed": "2026-01-02"},
            {"customer": "bob", "total": "7", "placed": "2026-01-03"},
        ]
    ]
    sneaky = "WITH gone AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM gone"
    assert_failed(await run(pilot, alice, Q, {"query": sneaky}), "changes data")
    r = await run(pilot, alice, Q, {"query": "SELECT * FROM nope"})
    assert_failed(r, "refused the query", "nope")
    r = await run(
        pilot,
        alice,
        X,
        {"statement": "UPDATE orders SET total = total + 1 RETURNING id", "max_rows": 5},
    )
    out = assert_ok(r)
    assert out["rows_affected"] == [2] and out["status"] == ["UPDATE 2"]
    assert len(out["rows"][0]) == 2
    assert PASSWORD not in str(r)
    records = await pilot.executions.list(alice.id)
    assert PASSWORD not in repr(records)


async def test_postgres_private_host_is_refused_unless_allowed(make_pilot, pg_database) -> None:
    url, _ = pg_database
    pilot = await make_pilot()  # loopback not allowed
    alice, _ = await pilot.users.create("alice")
    await add_key(pilot, alice, "database", url)
    r = await run(pilot, alice, Q, {"query": "SELECT 1"})
    assert r["type"] == "error" and "blocked" in r["message"].lower(), r
    assert PASSWORD not in str(r)
    await add_key(pilot, alice, "database", f"postgresql://x:{PASSWORD}@10.1.2.3:5432/db")
    r = await run(pilot, alice, Q, {"query": "SELECT 1"})
    assert r["type"] == "error" and "blocked" in r["message"].lower(), r


async def test_postgres_connect_failure_never_echoes_the_password(make_pilot, pg_database) -> None:
    url, host_port = pg_database
    pilot = await make_pilot(http_allowed_hosts=(host_port,))
    alice, _ = await pilot.users.create("alice")
    await add_key(pilot, alice, "database", url.rsplit("/", 1)[0] + "/no_such_database")
    r = await run(pilot, alice, Q, {"query": "SELECT 1"})
    assert_failed(r, "Could not connect")
    assert PASSWORD not in str(r)
