"""``BLOCKPILOT_HEADER_TIMEOUT_SECONDS`` reaches a real ``blockpilot serve``: a client that
sends part of a request head and then stalls is disconnected (docs/configuration.md)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from blockpilot.credentials.crypto import KeyRing
from tests import bp_database
from tests.reliability.rel_helpers import Serve, base_env

GUARD_SECONDS = 30.0


@pytest.mark.slow
def test_blockpilot_serve_closes_a_stalled_request_head(tmp_path: Path) -> None:
    env = base_env(tmp_path / "home", KeyRing.generate_key(), BLOCKPILOT_HEADER_TIMEOUT_SECONDS="1")
    env.update(bp_database.database_env())
    server = Serve(env, tmp_path / "serve.log")
    try:
        server.wait_ready(timeout=120)
        with socket.create_connection(("127.0.0.1", server.port), timeout=GUARD_SECONDS) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            assert sock.recv(65536) == b""  # closed by the server, well before our guard
        with socket.create_connection(("127.0.0.1", server.port), timeout=GUARD_SECONDS) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")  # whole heads are served
    finally:
        server.kill()
