"""Shared pieces of the adversarial suite: the canary registry, guarded Pilots with an
injected resolver, and the ways into blockpilot (Python API, HTTP, MCP, CLI).

Importable (conftest is not). The local servers, the loopback ``canary`` fixture, resolver
stub and fake network backend of ``tests/net`` are reused from ``net_servers``; a real socket
for an ASGI app is ``blockpilot.testing.serve_asgi`` (here ``serve_app``).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from blockpilot.net import DestinationPolicy, GuardedHTTPClient
from blockpilot.net._transport import PinnedTransport
from blockpilot.pilot import Pilot
from blockpilot.testing import serve_asgi as serve_app
from tests.net.net_servers import FakeInternet, LocalServer, StubResolver, canary_server

__all__ = [
    "CANARIES",
    "FakeInternet",
    "LocalServer",
    "StubResolver",
    "canary_server",
    "PUBLIC_IP",
    "PUBLIC_IP_2",
    "guard_pilot",
    "leak_forms",
    "serve_app",
    "tool_json",
]

# Documentation-free, really public addresses: FakeInternet routes them to local servers,
# so nothing ever leaves this machine.
PUBLIC_IP = "93.184.215.14"
PUBLIC_IP_2 = "151.101.1.69"

CALCULATOR_ID = "b1ab9b19-67a6-406d-abf5-2dba76d00c79"
WEB_REQUEST_ID = "6595ae1f-b924-42cb-9a41-551a0611c4b4"
AUTH_WEB_REQUEST_ID = "fff86bcd-e001-4bad-a7f6-2eae4720c8dc"
EMAIL_ID = "4335878a-394e-4e67-adf2-919877ff49ae"
GITHUB_ISSUE_ID = "b4a3c2f1-6e5d-4c8b-9a7f-0e1d2c3b4a59"
LLM_ID = "1f292d4a-41a4-4977-9684-7c8d560b9f91"
WRITE_FILE_ID = "5a0a5a52-6f3c-4c55-8c39-1f0f5d0b7d21"
READ_FILE_ID = "0e5b8b0e-3d8a-4b0b-9a36-2f4f8e2b6c11"
LIST_FILES_ID = "9c7f3e61-1b2d-4f57-8c0e-6a3d5b4e2f90"


# --------------------------------------------------------------------------- canaries


def leak_forms(secret: str) -> list[str]:
    """A secret as it leaks: raw, URL-encoded, and base64 in its common spellings."""
    raw = secret.encode()
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    return sorted(forms)


class _LogCapture(logging.Handler):
    """Keeps the text of every log record (message, traceback, extra fields)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        parts = [record.getMessage(), str(record.exc_text or "")]
        if record.exc_info and record.exc_info[0] is not None:
            parts.append(logging.Formatter().formatException(record.exc_info))
        parts.append(repr({k: v for k, v in record.__dict__.items() if k not in ("args", "msg")}))
        with self._guard:
            self.texts.append("\n".join(parts))


@dataclass
class CanaryRegistry:
    """Every canary secret the security suite plants, and everything it must never reach.

    Tests plant canaries with :meth:`new`, register what the service produced (responses,
    exception texts, CLI output, subprocess logs) with :meth:`saw`, and the data folders of
    the services they ran with :meth:`watch_home`; the logs of every security test are captured.
    When the session ends, the ``_canary_sweep`` fixture (``conftest.py``) looks for every
    canary in every form in all of it.
    """

    canaries: list[str] = field(default_factory=list)
    texts: list[tuple[str, str]] = field(default_factory=list)
    homes: list[Path] = field(default_factory=list)
    logs: _LogCapture = field(default_factory=_LogCapture)

    def new(self, label: str = "cnry") -> str:
        # '/', '+' and '=' make the URL-encoded forms differ from the raw one.
        value = f"{label}{secrets.token_hex(12)}/+="
        self.canaries.append(value)
        return value

    def saw(self, where: str, value: Any) -> Any:
        """Register something the service produced; returns it unchanged."""
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        self.texts.append((where, text))
        return value

    def start_capture(self) -> None:
        root = logging.getLogger()
        if self.logs not in root.handlers:
            self._root_level = root.level
            root.addHandler(self.logs)
            root.setLevel(logging.DEBUG)  # third-party DEBUG lines too (SQL parameters, ...)

    def stop_capture(self) -> None:
        root = logging.getLogger()
        if self.logs in root.handlers:
            root.removeHandler(self.logs)
            root.setLevel(getattr(self, "_root_level", logging.WARNING))

    def watch_home(self, home: Path) -> None:
        if home not in self.homes:
            self.homes.append(home)

    # -- the sweep ------------------------------------------------------------------------

    def _needles(self) -> list[tuple[str, str]]:
        return [(canary, form) for canary in self.canaries for form in leak_forms(canary)]

    def sweep(self) -> list[str]:
        """Where any canary was found (empty: nowhere)."""
        needles = self._needles()
        found: list[str] = []

        def check(where: str, text: str) -> None:
            for canary, form in needles:
                if form in text:
                    found.append(f"{where}: {form!r} (canary {canary[:8]}...)")

        for where, text in self.texts:
            check(where, text)
        for index, text in enumerate(list(self.logs.texts)):
            check(f"log record {index}", text)
        byte_needles = [(canary, form.encode()) for canary, form in needles]
        for home in self.homes:
            if not home.exists():
                continue
            for path in sorted(home.rglob("*")):
                if not path.is_file() or path.is_symlink():
                    continue
                data = path.read_bytes()
                for canary, form in byte_needles:
                    if form in data:
                        found.append(f"file {path}: {form!r} (canary {canary[:8]}...)")
            for database in home.rglob("blockpilot.db"):
                for where, text in database_cells(database):
                    check(where, text)
        return found


def database_cells(path: Path) -> Iterator[tuple[str, str]]:
    """Every cell of every table of a SQLite database, except the encrypted secrets."""
    with contextlib_closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            cursor = db.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from the schema
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row, strict=True):
                    if (table, column) == ("credentials", "secret") or value is None:
                        continue
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    yield f"{path.name} {table}.{column}", text


@contextmanager
def contextlib_closing(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:
        yield db
    finally:
        db.close()


CANARIES = CanaryRegistry()


# --------------------------------------------------------------------------- guarded pilots


def guarded_client(
    resolver: StubResolver | None = None,
    routes: dict[tuple[str, int], int] | None = None,
    *,
    allowed: Iterable[str] = (),
    **limits: Any,
) -> tuple[GuardedHTTPClient, FakeInternet]:
    """A guarded client with a scripted resolver and a fake internet (loopback stays real)."""
    internet = FakeInternet(dict(routes or {}))
    client = GuardedHTTPClient(
        DestinationPolicy.from_host_list(list(allowed), **limits),
        resolver=resolver or StubResolver(),
        transport=PinnedTransport(network_backend=internet),
    )
    return client, internet


async def guard_pilot(pilot: Pilot, client: GuardedHTTPClient) -> None:
    """Make *client* the HTTP client of every block run and credential check of *pilot*."""
    old = pilot.http
    pilot.http = client
    pilot.runner.http = client
    await old.aclose()


def tool_json(response: Any, where: str = "python api") -> dict[str, Any]:
    """A tool response as the JSON the model sees (registered for the canary sweep)."""
    data: dict[str, Any] = json.loads(response.to_json())
    CANARIES.saw(where, data)
    return data


def blocked_cause(data: dict[str, Any]) -> str | None:
    """``destination_blocked`` when a run_block outcome is the typed SSRF refusal."""
    if data.get("type") != "error":
        return None
    return (data.get("details") or {}).get("cause") or data.get("code")
