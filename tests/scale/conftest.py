"""Scale-out tests: real PostgreSQL and Redis servers, several blockpilot processes.

They run in the PostgreSQL pass of the suite (``BLOCKPILOT_TEST_DATABASE=postgresql``, as
``.ci/run`` does) and need Debian's ``postgresql`` and ``redis-server`` installed; otherwise
they are skipped, saying why. ``BLOCKPILOT_TEST_REQUIRE_SCALE=1`` (set by ``.ci/run``)
turns every such skip into a failure, so CI cannot pass without running them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import bp_database
from tests.scale.scale_services import PostgresCluster, RedisServer, postgres_bin, redis_server_bin

REQUIRED = os.environ.get("BLOCKPILOT_TEST_REQUIRE_SCALE", "") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (BLOCKPILOT_TEST_REQUIRE_SCALE=1: the scale tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def scale_enabled() -> None:
    if bp_database.BACKEND != "postgresql":
        _unavailable(
            "scale tests run in the PostgreSQL pass: set BLOCKPILOT_TEST_DATABASE=postgresql and "
            "BLOCKPILOT_TEST_PG_URL (see .ci/run)"
        )


@pytest.fixture(autouse=True)
def _postgresql_pass(scale_enabled: None) -> None:
    """Every scale test is gated, whatever fixtures it uses."""


@pytest.fixture(scope="session")
def redis_binary(scale_enabled: None) -> str:
    binary = redis_server_bin()
    if binary is None:
        _unavailable("redis-server is not installed (apt-get install redis-server)")
    assert binary is not None
    return binary


@pytest.fixture(scope="session")
def postgres_binaries(scale_enabled: None) -> Path:
    bindir = postgres_bin()
    if bindir is None:
        _unavailable("PostgreSQL server binaries are not installed (apt-get install postgresql)")
    assert bindir is not None
    return bindir


@pytest.fixture
def redis_server(redis_binary: str) -> Iterator[RedisServer]:
    """A Redis of this test's own, which it may stop and start again."""
    server = RedisServer(redis_binary)
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_cluster(postgres_binaries: Path) -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of this test's own, which it may stop and restart."""
    cluster = PostgresCluster(postgres_binaries)
    cluster.init()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()
