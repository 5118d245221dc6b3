"""SQL blocks against the user's own database (docs/blocks-catalogue.md#database).

The credential is a connection string (provider ``database``, an API-key credential):
``postgresql://user:password@host:5432/dbname`` or ``sqlite:///reports/sales.db``.

* PostgreSQL (asyncpg): the host is resolved and checked by the same guard as every HTTP
  destination (no private or internal address unless the operator allows it), and the
  connection goes to the checked address. :class:`SQLQueryBlock` runs in a read-only
  transaction; writes need :class:`SQLExecuteBlock`, declared destructive.
* SQLite: the path names a file in the user's workspace, never one on the server. The
  query runs on a private copy; ``ATTACH`` and extensions are refused, so no other file
  can be reached; a write is saved back to the workspace whole.
* MySQL is refused with a clear message: no async MySQL driver ships with blockpilot.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import decimal
import re
import sqlite3
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.library._provider_api import trim
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import APIKeyCredentials, CredentialsMetaInput
from blockpilot.executions.context import ExecutionContext

QUERY_TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 10.0
MAX_CELL_CHARS = 2000
READ_ONLY_HINT = (
    "This statement changes data; SQLQueryBlock only reads. Use SQLExecuteBlock to write"
)
_READ_START = re.compile(
    r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*(select|with|values|table|show|explain)\b", re.I | re.S
)


@dataclass(frozen=True, slots=True)
class Connection:
    """A parsed connection string (the password stays inside; never shown)."""

    kind: str  # postgresql | sqlite
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    database: str = ""
    sslmode: str = "prefer"
    path: str = ""  # sqlite: the workspace path


def parse_connection(text: str) -> Connection:
    """Read a connection string; errors never repeat it (it holds a password)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        raise ValueError("The database credential is not a valid connection string") from None
    scheme = parts.scheme.lower().split("+", 1)[0]
    if scheme in ("mysql", "mariadb"):
        raise ValueError(
            "MySQL is not supported: no async MySQL driver ships with blockpilot. "
            "Use a PostgreSQL or SQLite connection string"
        )
    if scheme == "sqlite":
        path = unquote(parts.netloc + parts.path).lstrip("/")
        if not path:
            raise ValueError("A SQLite connection string names a workspace file: sqlite:///data.db")
        return Connection("sqlite", path=path)
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(
            "The database credential must start with postgresql:// or sqlite:/// "
            f"(not {scheme or 'nothing'}://)"
        )
    host = parts.hostname or ""
    if not host or host.startswith("/"):
        raise ValueError("The PostgreSQL connection string needs a host name (no Unix sockets)")
    query = parse_qs(parts.query)
    sslmode = (query.get("sslmode") or ["prefer"])[0]
    if sslmode not in ("disable", "allow", "prefer", "require"):
        raise ValueError("sslmode must be disable, allow, prefer or require")
    return Connection(
        "postgresql",
        host=host,
        port=port or 5432,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=unquote(parts.path.lstrip("/")) or unquote(parts.username or ""),
        sslmode=sslmode,
    )


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return "base64:" + base64.b64encode(bytes(value)[:MAX_CELL_CHARS]).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value[:100]]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in list(value.items())[:100]}
    return trim(value, MAX_CELL_CHARS)


def _credentials() -> Any:
    return CredentialsField(
        providers=["database"],
        supported_types=["api_key"],
        description=(
            "Connection string of your database: postgresql://user:password@host:5432/db "
            "or sqlite:///file-in-your-workspace.db"
        ),
    )


@dataclass(slots=True)
class _Result:
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    status: str = ""
    affected: int = -1


# -- PostgreSQL ---------------------------------------------------------------------------


async def _postgres(
    context: ExecutionContext,
    conn: Connection,
    sql: str,
    params: list[Any],
    max_rows: int,
    *,
    read_only: bool,
) -> _Result:
    import ssl

    import asyncpg

    address = await context.http.checked_address(conn.host, conn.port)
    tls: Any
    if conn.sslmode == "disable":
        tls = False
    else:
        # libpq's "require" encrypts without verifying the certificate; we connect to the
        # checked address, so a name check could not pass anyway.
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
        if conn.sslmode in ("prefer", "allow"):
            tls = "prefer"
    try:
        db = await asyncpg.connect(
            host=address,
            port=conn.port,
            user=conn.user,
            password=conn.password or None,
            database=conn.database,
            ssl=tls,
            timeout=CONNECT_TIMEOUT_SECONDS,
            command_timeout=QUERY_TIMEOUT_SECONDS,
            server_settings={"application_name": "blockpilot"},
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ValueError(
            f"Could not connect to the database at {conn.host}: {_pg_reason(exc)}"
        ) from None
    try:
        async with db.transaction(readonly=read_only):
            statement = await db.prepare(sql)
            rows = await statement.fetch(*params)
            status = statement.get_statusmsg() or ""
            columns = [a.name for a in statement.get_attributes()]
    except asyncpg.exceptions.ReadOnlySQLTransactionError:
        raise ValueError(READ_ONLY_HINT) from None
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ValueError(f"The database refused the query: {_pg_reason(exc)}") from None
    except TimeoutError:
        raise ValueError(f"The query ran longer than {QUERY_TIMEOUT_SECONDS:g} seconds") from None
    finally:
        await db.close(timeout=5)
    rows = rows or []
    affected = int(status.rsplit(" ", 1)[-1]) if status.rsplit(" ", 1)[-1].isdigit() else -1
    return _Result(
        columns,
        [[_jsonable(v) for v in r.values()] for r in rows[:max_rows]],
        len(rows) > max_rows,
        status,
        affected,
    )


def _pg_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and not getattr(exc, "sqlstate", None):
        return "could not reach the server"
    return trim(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 300)


# -- SQLite -------------------------------------------------------------------------------

_DENIED = {sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH}


def _authorizer(action: int, arg1: Any, arg2: Any, db: Any, source: Any) -> int:
    if action in _DENIED:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and str(arg2).lower() in (
        "load_extension",
        "readfile",
        "writefile",
    ):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _run_sqlite(path: str, sql: str, params: list[Any], max_rows: int, read_only: bool) -> _Result:
    uri = f"file:{path}?mode={'ro' if read_only else 'rw'}"
    db = sqlite3.connect(uri, uri=True, timeout=5, check_same_thread=False)
    deadline = time.monotonic() + QUERY_TIMEOUT_SECONDS
    try:
        db.set_authorizer(_authorizer)
        db.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        cursor = db.execute(sql, params)
        columns = [c[0] for c in cursor.description or []]
        fetched = cursor.fetchmany(max_rows + 1) if cursor.description else []
        affected = cursor.rowcount
        if not read_only:
            db.commit()
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc):
            raise ValueError(
                f"The query ran longer than {QUERY_TIMEOUT_SECONDS:g} seconds"
            ) from None
        if "readonly" in str(exc) or "read-only" in str(exc):
            raise ValueError(READ_ONLY_HINT) from None
        raise ValueError(f"SQLite refused the query: {exc}") from None
    except (sqlite3.DatabaseError, sqlite3.ProgrammingError, sqlite3.Warning) as exc:
        raise ValueError(f"SQLite refused the query: {exc}") from None
    finally:
        db.close()
    return _Result(
        columns,
        [[_jsonable(v) for v in row] for row in fetched[:max_rows]],
        len(fetched) > max_rows,
        affected=affected,
    )


async def _sqlite(
    context: ExecutionContext,
    conn: Connection,
    sql: str,
    params: list[Any],
    max_rows: int,
    *,
    read_only: bool,
) -> _Result:
    data = await context.files.read(conn.path)
    if data and not data.startswith(b"SQLite format 3\x00"):
        raise ValueError(f"The workspace file {conn.path} is not a SQLite database")
    with tempfile.TemporaryDirectory(prefix="blockpilot-sqlite-") as folder:
        copy = Path(folder) / "db.sqlite"
        copy.write_bytes(data)
        result = await asyncio.to_thread(_run_sqlite, str(copy), sql, params, max_rows, read_only)
        if not read_only:
            await context.files.write(
                conn.path, copy.read_bytes(), mime_type="application/vnd.sqlite3"
            )
    return result


async def _run(
    context: ExecutionContext,
    credentials: APIKeyCredentials,
    sql: str,
    params: list[Any],
    max_rows: int,
    *,
    read_only: bool,
) -> _Result:
    conn = parse_connection(credentials.api_key.get_secret_value())
    runner = _sqlite if conn.kind == "sqlite" else _postgres
    return await runner(context, conn, sql, params, max_rows, read_only=read_only)


class _SQLInput(BlockSchemaInput):
    parameters: list[Any] = SchemaField(
        default_factory=list,
        description="Values for the placeholders ($1, $2… in PostgreSQL; ? in SQLite)",
        max_length=100,
    )
    max_rows: Integer = SchemaField(default=100, ge=1, le=5000, description="Most rows to return")
    credentials: CredentialsMetaInput = _credentials()


class SQLQueryBlock(Block):
    id = "ab084452-f7e5-430a-bf22-1479f068cd4b"
    effect = BlockEffect.READ
    description = (
        "Runs a read-only SQL query (SELECT) on the user's own PostgreSQL or SQLite database "
        "and returns the rows."
    )
    categories = frozenset({BlockCategory.DATA, BlockCategory.DEVELOPER_TOOLS})

    class Input(_SQLInput):
        query: str = SchemaField(
            description="One SQL SELECT statement", min_length=1, max_length=100_000
        )

    class Output(BlockSchemaOutput):
        rows: list[dict[str, Any]] = SchemaField(description="The rows, by column name")
        columns: list[str] = SchemaField(description="Column names, in order")
        row_count: Integer = SchemaField(description="How many rows are returned")
        truncated: bool = SchemaField(description="True when there were more than max_rows")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: APIKeyCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        if not _READ_START.match(input_data.query):
            yield (
                "error",
                "SQLQueryBlock only reads (SELECT, WITH, VALUES, EXPLAIN); use SQLExecuteBlock "
                "to change data",
            )
            return
        result = await _run(
            execution_context,
            credentials,
            input_data.query,
            input_data.parameters,
            input_data.max_rows,
            read_only=True,
        )
        yield "rows", [dict(zip(result.columns, row, strict=False)) for row in result.rows]
        yield "columns", result.columns
        yield "row_count", len(result.rows)
        yield "truncated", result.truncated


class SQLExecuteBlock(Block):
    id = "d89fdd7b-8ac7-4d56-a79b-1fd159e458f4"
    effect = BlockEffect.DESTRUCTIVE
    description = (
        "Runs a SQL statement that changes data (INSERT, UPDATE, DELETE, CREATE…) on the "
        "user's own PostgreSQL or SQLite database."
    )
    categories = frozenset({BlockCategory.DATA, BlockCategory.DEVELOPER_TOOLS})

    class Input(_SQLInput):
        statement: str = SchemaField(
            description="One SQL statement; add RETURNING to get rows back",
            min_length=1,
            max_length=100_000,
        )

    class Output(BlockSchemaOutput):
        rows_affected: Integer = SchemaField(description="Rows changed (-1 when unknown)")
        rows: list[dict[str, Any]] = SchemaField(description="Rows the statement returned")
        status: str = SchemaField(description="The database's status, e.g. 'INSERT 0 3'")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: APIKeyCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        result = await _run(
            execution_context,
            credentials,
            input_data.statement,
            input_data.parameters,
            input_data.max_rows,
            read_only=False,
        )
        yield "rows_affected", result.affected
        yield "rows", [dict(zip(result.columns, row, strict=False)) for row in result.rows]
        yield (
            "status",
            result.status or ("OK" if result.affected < 0 else f"{result.affected} row(s)"),
        )
