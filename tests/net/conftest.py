"""Fixtures for the guarded HTTP client tests: local servers that count hits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from net_servers import LocalServer


@pytest.fixture
def canary() -> Iterator[LocalServer]:
    """A loopback server nothing may ever reach; tests assert it has no hits."""
    server = LocalServer()
    yield server
    server.close()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A loopback server the test policy exempts."""
    server = LocalServer()
    yield server
    server.close()


@pytest.fixture
def server2() -> Iterator[LocalServer]:
    """A second exempt server on another port (another origin)."""
    server = LocalServer()
    yield server
    server.close()
