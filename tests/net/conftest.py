"""Fixtures for the guarded HTTP client tests: local servers that count hits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.net.net_servers import LocalServer, canary_server  # noqa: F401 - the `canary` fixture


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A loopback server the test policy exempts."""
    with LocalServer() as server:
        yield server


@pytest.fixture
def server2() -> Iterator[LocalServer]:
    """A second exempt server on another port (another origin)."""
    with LocalServer() as server:
        yield server
