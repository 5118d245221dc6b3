"""The JSON log lines of the served API."""

from __future__ import annotations

import io
import json
import logging
import os
import random
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from blockpilot.api.logs import (
    JsonFormatter,
    _sole_json_handler,
    configure_logging,
    iso_milliseconds,
    log_info,
)
from blockpilot.api.server import server_config
from blockpilot.redaction import REDACTED, SECRETS, install_log_redaction, log_messages_scrubbed


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


# log_info: the access line written without a LogRecord must be the line the record makes.

ACCESS_ARGS = ("POST", "/api/v1/tools/run_block", 200, 1.5)


def _access_extra(path: str) -> dict[str, object]:
    return {
        "request_id": "0123456789abcdef0123456789abcdef",
        "method": "POST",
        "path": path,
        "status": 200,
        "duration_ms": 1.5,
        "user_id": None,
        "detail": {"header": "Bearer abcdefghijklmnop", "n": [1, 2.5, None, True]},
    }


@pytest.fixture
def json_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own (not propagating) with configure_logging's kind of handler, and
    no other: pytest attaches its capture handler to non-propagating loggers at each phase,
    so the test body calls ``only_ours``."""
    install_log_redaction()  # as Pilot.open does
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"blockpilot.tests.fast_line.{secrets.token_hex(4)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


def only_ours(logger: logging.Logger) -> None:
    logger.handlers[:] = [h for h in logger.handlers if type(h) is logging.StreamHandler]


def _without_ts(line: str) -> tuple[str, str]:
    entry = json.loads(line)
    ts = entry["ts"]
    assert line.startswith('{"ts": "') and ts in line
    return line.replace(ts, "<ts>", 1), ts


def test_the_line_without_a_record_is_the_records_line_byte_for_byte(
    json_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_logger
    only_ours(logger)
    canary = f"fast-line-canary-{secrets.token_hex(8)}"
    SECRETS.add([canary])
    assert _sole_json_handler(logger) is logger.handlers[0]  # the fast path is taken
    assert log_messages_scrubbed() is True  # with the record factory's message redaction
    for path in ("/api/v1/tools/run_block", f"/api/v1/things/{canary}", "/x?api_key=abcdefgh"):
        args = (*ACCESS_ARGS[:1], path, *ACCESS_ARGS[2:])
        log_info(logger, "%s %s %s %sms", args, _access_extra(path))
        logger.info("%s %s %s %sms", *args, extra=_access_extra(path))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 6
    for fast, standard in zip(lines[::2], lines[1::2], strict=True):
        fast_line, fast_ts = _without_ts(fast)
        standard_line, standard_ts = _without_ts(standard)
        assert fast_line == standard_line
        assert fast_ts[:16] == standard_ts[:16] and fast_ts.endswith("+00:00")
    text = stream.getvalue()
    assert canary not in text and "abcdefghijklmnop" not in text and "abcdefgh" not in text
    entry = json.loads(lines[2])
    assert entry["path"] == f"/api/v1/things/{REDACTED}"
    assert REDACTED in entry["message"] and entry["pid"] == os.getpid()


def test_the_line_follows_the_loggers_level(
    json_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_logger
    only_ours(logger)
    logger.setLevel(logging.WARNING)
    log_info(logger, "%s %s %s %sms", ACCESS_ARGS, _access_extra("/x"))
    logger.handlers[0].setLevel(logging.WARNING)
    logger.setLevel(logging.INFO)
    log_info(logger, "%s %s %s %sms", ACCESS_ARGS, _access_extra("/x"))
    assert stream.getvalue() == ""


def test_any_other_logging_setup_gets_the_record_itself(
    json_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    # A handler, a filter or a record factory of the application's sees a real LogRecord
    # (with the extra fields, scrubbed as ever by the formatter that writes them).
    logger, stream = json_logger
    only_ours(logger)
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    collect = Collect()
    logger.addHandler(collect)
    assert _sole_json_handler(logger) is None
    log_info(logger, "%s %s %s %sms", ACCESS_ARGS, _access_extra("/a"))
    logger.removeHandler(collect)

    logger.addFilter(lambda record: (seen.append(record), True)[1])
    assert _sole_json_handler(logger) is None
    log_info(logger, "%s %s %s %sms", ACCESS_ARGS, _access_extra("/b"))
    logger.filters.clear()

    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        seen.append(record)
        return record

    logging.setLogRecordFactory(factory)
    try:
        assert log_messages_scrubbed() is None
        log_info(logger, "%s %s %s %sms", ACCESS_ARGS, _access_extra("/c"))
    finally:
        logging.setLogRecordFactory(previous)
    assert [getattr(r, "path", None) for r in seen] == ["/a", "/b", "/c"]
    assert len(stream.getvalue().splitlines()) == 3  # and the JSON handler wrote each line


def test_line_timestamps_are_datetimes_isoformat_to_the_millisecond() -> None:
    # The date and time of day are formatted once a second; the rounding must stay datetime's.
    rnd = random.Random(17)
    stamps = [rnd.uniform(0, 2**33) for _ in range(20_000)]
    stamps += [rnd.randrange(0, 2**33) + rnd.randrange(0, 2 * 10**6) / 2e6 for _ in range(20_000)]
    edges = (0.0, 0.0005, 0.0004995, 0.0009995, 0.9995, 0.9999995, 0.99999949, 0.5000005, 1e-6)
    stamps += [whole + part for whole in (0, 1, 1_796_630_399, 2**31) for part in edges]
    for stamp in stamps:
        expected = datetime.fromtimestamp(stamp, UTC).isoformat(timespec="milliseconds")
        assert iso_milliseconds(stamp) == expected, stamp


def test_a_forked_worker_writes_its_own_pid(
    json_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, _ = json_logger
    only_ours(logger)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        try:
            logger.handlers[0].setStream(os.fdopen(write_end, "w"))  # type: ignore[attr-defined]
            log_info(logger, "%s %s %s %sms", ACCESS_ARGS, _access_extra("/x"))
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    with os.fdopen(read_end) as lines:
        assert json.loads(lines.read())["pid"] == child != os.getpid()


# The access line's fields: those a client sets are scrubbed, those this process made are not.


def test_fields_made_here_are_written_as_they_are_and_the_rest_as_the_record_writes_them(
    json_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_logger
    only_ours(logger)
    canary = f"made-here-canary-{secrets.token_hex(8)}"
    SECRETS.add([canary])
    for path in ("/api/v1/tools/run_block", f"/api/v1/things/{canary}"):
        args = (*ACCESS_ARGS[:1], path, *ACCESS_ARGS[2:])
        extra = {**_access_extra(path), "user_id": "9b2f7c3e-8a1d-4f6b-b0c5-2d9e8f7a6b5c"}
        log_info(logger, "%s %s %s %sms", args, extra, made_here={"request_id", "user_id"})
        logger.info("%s %s %s %sms", *args, extra=extra)
    lines = stream.getvalue().splitlines()
    for fast, standard in zip(lines[::2], lines[1::2], strict=True):
        assert _without_ts(fast)[0] == _without_ts(standard)[0]  # nothing to scrub in them
    assert canary not in stream.getvalue()
    # A field named made here is not scrubbed: the caller vouches it holds no client text.
    log_info(logger, "%s", ("x",), {"request_id": canary}, made_here={"request_id"})
    assert json.loads(stream.getvalue().splitlines()[-1])["request_id"] == canary


@pytest.fixture
def access_json_lines() -> Iterator[io.StringIO]:
    """The access logger writing to its own JSON handler alone (the line without a record)."""
    install_log_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("blockpilot.api.access")
    saved = (access.propagate, access.level, access.handlers[:])
    access.propagate, access.handlers[:] = False, [handler]
    access.setLevel(logging.INFO)
    yield stream
    access.propagate, access.handlers[:] = saved[0], saved[2]
    access.setLevel(saved[1])


async def _request_through_the_middleware(
    method: str, path: str, headers: list[tuple[bytes, bytes]], user_id: str | None
) -> None:
    from blockpilot.api.middleware import RequestContextMiddleware

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if user_id is not None:
            scope["state"]["user_id"] = user_id  # as sign-in sets it
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
    }
    await RequestContextMiddleware(app)(scope, receive, send)


async def test_a_canary_in_every_field_a_client_sets_never_reaches_the_access_line(
    access_json_lines: io.StringIO,
) -> None:
    only_ours(logging.getLogger("blockpilot.api.access"))
    assert _sole_json_handler(logging.getLogger("blockpilot.api.access")) is not None
    canary = f"Access-Canary-{secrets.token_hex(8)}"
    SECRETS.add([canary])
    user_id = "9b2f7c3e-8a1d-4f6b-b0c5-2d9e8f7a6b5c"
    await _request_through_the_middleware(
        f"X{canary}", f"/api/v1/tools/{canary}", [(b"x-request-id", canary.encode())], user_id
    )
    await _request_through_the_middleware("POST", "/api/v1/tools/run_block", [], user_id)
    # A secret spanning the path and the status in the message: scrubbed there too.
    SECRETS.add([f"{canary[-8:]} 200"])
    await _request_through_the_middleware("GET", f"/a/{canary[-8:]}", [], None)
    text = access_json_lines.getvalue()
    assert canary not in text and f"{canary[-8:]} 200" not in text
    with_canary, plain, spanning = map(json.loads, text.splitlines())
    assert with_canary["method"] == f"X{REDACTED}"
    assert with_canary["path"] == f"/api/v1/tools/{REDACTED}"
    assert with_canary["request_id"] == REDACTED
    assert with_canary["message"].startswith(f"X{REDACTED} /api/v1/tools/{REDACTED} 200 ")
    assert with_canary["user_id"] == plain["user_id"] == user_id
    assert len(plain["request_id"]) == 32 and plain["path"] == "/api/v1/tools/run_block"
    assert spanning["message"].startswith(f"GET /a/{REDACTED} ")  # "<tail> 200" went whole
    assert spanning["path"] == f"/a/{canary[-8:]}"  # the tail alone is no secret


async def test_the_access_line_is_the_records_line_when_no_field_made_here_spells_a_secret(
    access_json_lines: io.StringIO,
) -> None:
    # The same requests, written without a record and (with a second handler) through one.
    canary = f"access-record-canary-{secrets.token_hex(8)}"
    SECRETS.add([canary])
    access = logging.getLogger("blockpilot.api.access")
    only_ours(access)
    requests = [
        ("POST", "/api/v1/tools/run_block", [], "9b2f7c3e-8a1d-4f6b-b0c5-2d9e8f7a6b5c"),
        ("POST", f"/api/v1/tools/{canary}", [(b"x-request-id", b"trace-1")], None),
        ("GET", "/x", [(b"x-request-id", canary.encode())], None),
    ]
    lines = []
    for method, path, headers, user_id in requests:
        for through_a_record in (False, True):
            other = logging.NullHandler()
            if through_a_record:
                access.addHandler(other)
            assert (_sole_json_handler(access) is None) == through_a_record
            await _request_through_the_middleware(method, path, headers, user_id)
            access.removeHandler(other)
            entry = json.loads(access_json_lines.getvalue().splitlines()[-1])
            for made_per_request in ("ts", "duration_ms", "message"):
                entry.pop(made_per_request)
            if not headers:
                entry.pop("request_id")  # a new one each request
            lines.append(entry)
    for fast, standard in zip(lines[::2], lines[1::2], strict=True):
        assert fast == standard
    assert canary not in access_json_lines.getvalue()


def test_a_text_found_clean_is_scrubbed_once_its_secret_is_registered(
    json_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    # log_info keeps the texts the current redactor left unchanged; a new secret makes a new
    # redactor, so a text kept as clean is searched again.
    logger, stream = json_logger
    only_ours(logger)
    late = f"late-canary-{secrets.token_hex(8)}"
    path = f"/api/v1/things/{late}"
    args = (*ACCESS_ARGS[:1], path, *ACCESS_ARGS[2:])
    clean_path = "/api/v1/tools/run_block"
    clean = (*ACCESS_ARGS[:1], clean_path, *ACCESS_ARGS[2:])
    for _ in range(3):  # the second and third lines are made from the kept texts
        log_info(logger, "%s %s %s %sms", clean, _access_extra(clean_path))
        logger.info("%s %s %s %sms", *clean, extra=_access_extra(clean_path))
    clean_lines = stream.getvalue().splitlines()
    assert len({_without_ts(line)[0] for line in clean_lines}) == 1
    stream.seek(0)
    stream.truncate()
    for _ in range(2):
        log_info(logger, "%s %s %s %sms", args, _access_extra(path))
    SECRETS.add([late])
    for _ in range(2):
        log_info(logger, "%s %s %s %sms", args, _access_extra(path))
        logger.info("%s %s %s %sms", *args, extra=_access_extra(path))
    lines = stream.getvalue().splitlines()
    assert [late in line for line in lines] == [True, True, False, False, False, False]
    assert _without_ts(lines[2])[0] == _without_ts(lines[3])[0]
    assert _without_ts(lines[4])[0] == _without_ts(lines[5])[0]
    assert json.loads(lines[4])["path"] == f"/api/v1/things/{REDACTED}"
