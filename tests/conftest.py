"""Shared fixtures: a real Pilot on a temporary database, and two users.

The database is a SQLite file in the test's temporary home unless
``BLOCKPILOT_TEST_DATABASE=postgresql`` (with ``BLOCKPILOT_TEST_PG_URL``) is set: then each
test gets a fresh, empty PostgreSQL database (see ``bp_database``). Either way, every Settings a
test builds with ``settings_factory`` points at the same database, so reopening a Pilot sees
what the first one stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from blockpilot.blocks.registry import BlockRegistry
from blockpilot.credentials.crypto import KeyRing
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.storage.users import User
from tests import bp_database

# The workspace blob backend of each test's Settings (file: unless marked workspace_backends).
pytest_plugins = ["tests.workspace_backends"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def pytest_report_header(config: pytest.Config) -> str:
    return f"blockpilot test database: {bp_database.BACKEND}"


@pytest.fixture(scope="session")
def _postgres_databases() -> Iterator[bp_database.PostgresDatabases | None]:
    if bp_database.BACKEND != "postgresql":
        yield None
        return
    databases = bp_database.PostgresDatabases(bp_database.PG_ADMIN_URL)
    databases.start()
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture(scope="session")
def _sqlite_template(
    tmp_path_factory: pytest.TempPathFactory,
) -> bp_database.SqliteTemplate | None:
    """One migrated SQLite file per test process, copied into each test's home."""
    if bp_database.BACKEND != "sqlite":
        return None
    return bp_database.SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture
def settings_factory(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    _postgres_databases: bp_database.PostgresDatabases | None,
    _sqlite_template: bp_database.SqliteTemplate | None,
    workspace_url: str,
) -> Iterator[Callable[..., Settings]]:
    """Build Settings for the temp home; tests pass overrides (e.g. http_allowed_hosts)."""
    # Keep the developer's own environment out of the tests.
    import os

    for name in list(os.environ):
        if name.startswith("BLOCKPILOT_"):
            monkeypatch.delenv(name)
    key = KeyRing.generate_key()
    databases: list[str] = []  # this test's PostgreSQL database, made on first use
    # Workspace files stay in the local folder (which many tests inspect) on either database;
    # tests marked workspace_backends run on each backend (tests/workspace_backends.py).
    monkeypatch.setenv("BLOCKPILOT_WORKSPACE_URL", workspace_url)
    bp_database.CURRENT_WORKSPACE_URL = workspace_url

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "home": home,
            "encryption_keys": (key,),
            "workspace_url": workspace_url,
        }
        if _postgres_databases is not None:
            if not databases:
                databases.append(_postgres_databases.acquire())
                url = bp_database.sqlalchemy_url(_postgres_databases.admin_url, databases[0])
                # What a CLI run in-process (CliRunner) or a child process reads; children
                # built from a filtered environment add bp_database.database_env().
                monkeypatch.setenv("BLOCKPILOT_DATABASE_URL", url)
                bp_database.CURRENT_URL = url
            values["database_url"] = bp_database.sqlalchemy_url(
                _postgres_databases.admin_url, databases[0]
            )
        values.update(overrides)
        settings = Settings.load(**values)
        if _sqlite_template is not None and settings.database_url is None:
            _sqlite_template.copy_to(settings.home / "blockpilot.db")
        return settings

    yield make
    # Everything that uses this factory is torn down by now (it was set up after it).
    bp_database.CURRENT_WORKSPACE_URL = "file:"
    if _postgres_databases is not None and databases:
        bp_database.CURRENT_URL = None
        _postgres_databases.release(databases[0])


@pytest.fixture
def settings(settings_factory) -> Settings:
    return settings_factory(http_allowed_hosts=("127.0.0.1",))


@pytest.fixture
def pilot_settings(settings: Settings) -> Settings:
    """The settings of the ``pilot`` fixture. A test module that needs other settings
    overrides this fixture (or ``pilot_registry``), never ``pilot`` itself, so ``alice`` and
    ``bob`` are always users of the one Pilot the test gets."""
    return settings


@pytest.fixture
def pilot_registry() -> BlockRegistry | None:
    """The block registry of the ``pilot`` fixture; None is the default catalogue."""
    return None


@pytest.fixture
async def pilot(
    pilot_settings: Settings, pilot_registry: BlockRegistry | None
) -> AsyncIterator[Pilot]:
    p = await Pilot.open(pilot_settings, registry=pilot_registry)
    try:
        if pilot_registry is not None:
            assert not p.registry.problems, p.registry.problems
        yield p
    finally:
        await p.close()


@pytest.fixture
async def alice(pilot: Pilot) -> User:
    user, _ = await pilot.users.create("alice")
    return user


@pytest.fixture
async def bob(pilot: Pilot) -> User:
    user, _ = await pilot.users.create("bob")
    return user
