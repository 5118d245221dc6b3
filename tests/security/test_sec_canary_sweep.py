"""The canary sweep can fail: it finds a canary in every place and form it looks for.

The sweep of the whole suite runs when the session ends (``_canary_sweep`` in
``conftest.py``); these tests use a registry of their own, so they plant nothing there.
"""

from __future__ import annotations

import base64
import logging
import sqlite3
from pathlib import Path
from urllib.parse import quote

from tests.security.sec_helpers import CanaryRegistry


def test_a_clean_registry_sweeps_clean(tmp_path: Path) -> None:
    registry = CanaryRegistry()
    registry.new()
    registry.saw("a response", {"type": "block_output", "outputs": {"result": [5.0]}})
    registry.watch_home(tmp_path)
    (tmp_path / "notes.txt").write_text("nothing secret here")
    assert registry.sweep() == []


def test_the_sweep_finds_a_canary_in_a_response_a_log_record_and_a_file(tmp_path: Path) -> None:
    registry = CanaryRegistry()
    canary = registry.new("leak")
    registry.saw("a response", {"message": f"Bearer {canary}"})
    registry.start_capture()
    try:
        encoded = base64.b64encode(canary.encode()).decode()
        logging.getLogger("blockpilot.test").warning("upstream said %s", encoded)
    finally:
        registry.stop_capture()
    registry.watch_home(tmp_path)
    (tmp_path / "crash.log").write_text(f"url=https://x.example/?k={quote(canary, safe='')}")
    found = "\n".join(registry.sweep())
    assert "a response" in found
    assert "log record" in found
    assert "crash.log" in found


def test_the_sweep_reads_every_database_column_but_the_encrypted_secret(tmp_path: Path) -> None:
    registry = CanaryRegistry()
    canary = registry.new("row")
    registry.watch_home(tmp_path)
    with sqlite3.connect(tmp_path / "blockpilot.db") as db:
        db.execute("CREATE TABLE credentials (id TEXT, title TEXT, secret BLOB)")
        db.execute("INSERT INTO credentials VALUES ('1', 'fine', ?)", (b"ciphertext",))
        db.execute("CREATE TABLE executions (id TEXT, input_redacted TEXT)")
        db.execute("INSERT INTO executions VALUES ('e1', ?)", (f'{{"token": "{canary}"}}',))
    db.close()
    found = registry.sweep()
    assert any("executions.input_redacted" in line for line in found), found
    assert not any("credentials." in line for line in found)
