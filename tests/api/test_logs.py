"""The JSON log lines of the served API."""

from __future__ import annotations

import json
import logging
import secrets

import pytest

from blockpilot.api.logs import JsonFormatter, configure_logging
from blockpilot.api.server import server_config
from blockpilot.redaction import REDACTED, SECRETS


def test_a_record_is_one_json_line_with_its_extra_fields() -> None:
    record = logging.LogRecord(
        "blockpilot.api.access", logging.INFO, __file__, 1, "%s %s", ("GET", "/x"), None
    )
    record.request_id = "req-1"
    record.status = 200
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "GET /x" and entry["level"] == "info"
    assert entry["logger"] == "blockpilot.api.access"
    assert (entry["request_id"], entry["status"]) == ("req-1", 200)


def test_exceptions_are_inside_the_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), True)
        import sys

        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in entry["exception"]


def test_configure_logging_replaces_root_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    configure_logging("warning")
    assert root.level == logging.WARNING
    assert [type(h.formatter) for h in root.handlers] == [JsonFormatter]


def test_uvicorn_leaves_logging_and_access_lines_to_us() -> None:
    config = server_config(object(), host="127.0.0.1", port=1)  # type: ignore[arg-type]
    assert config.log_config is None and config.access_log is False
    assert config.lifespan == "on" and config.server_header is False


def test_uvicorns_color_message_stays_out_of_the_json_line() -> None:
    # Regression: uvicorn's `color_message` extra put ANSI escape codes into every line.
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Started", (), None)
    record.color_message = "Started \x1b[36m1\x1b[0m"
    assert "color_message" not in json.loads(JsonFormatter().format(record))


def test_alembic_start_up_chatter_is_hidden_at_info(monkeypatch: pytest.MonkeyPatch) -> None:
    root, alembic = logging.getLogger(), logging.getLogger("alembic")
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    levels = root.level, alembic.level
    try:
        configure_logging("info")
        assert alembic.getEffectiveLevel() == logging.WARNING
        configure_logging("error")
        assert alembic.getEffectiveLevel() == logging.ERROR
    finally:
        root.setLevel(levels[0])
        alembic.setLevel(levels[1])


def test_extra_fields_are_scrubbed_of_known_secrets_and_secret_shapes() -> None:
    # Logger.makeRecord attaches `extra` after the redacting record factory has run, so the
    # line's own fields (an access line's path is the client's) are scrubbed when written.
    canary = f"log-extra-canary-{secrets.token_hex(8)}"
    SECRETS.add([canary])
    logger = logging.getLogger("blockpilot.tests.log_extras")
    record = logger.makeRecord(
        logger.name,
        logging.INFO,
        __file__,
        1,
        "%s",
        ("GET /x",),
        None,
        extra={
            "path": f"/api/v1/things/{canary}",
            "detail": {"reason": f"upstream said {canary}", "header": "Bearer abcdefghijklmnop"},
            "status": 200,
        },
    )
    line = JsonFormatter().format(record)
    assert canary not in line and "abcdefghijklmnop" not in line
    entry = json.loads(line)
    assert entry["path"] == f"/api/v1/things/{REDACTED}"
    assert entry["detail"]["reason"] == f"upstream said {REDACTED}"
    assert entry["status"] == 200
