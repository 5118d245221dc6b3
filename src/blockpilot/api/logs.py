"""One JSON object per log line, with the ``extra`` fields of the record."""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from blockpilot.redaction import SECRETS, Redactor, log_messages_scrubbed

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's terminal variant of the message, with ANSI escapes
}


# What json.dumps(entry, default=str) builds on every call; encoding keeps no state.
_ENCODER = json.JSONEncoder(default=str)


class JsonFormatter(logging.Formatter):
    """Formats a record as ``{"ts", "level", "logger", "message", "pid", ...extra,
    "exception"?}``.

    The ``extra`` fields are scrubbed of secrets here: the log record factory of
    :func:`blockpilot.redaction.install_log_redaction` scrubs the message and traceback, but
    ``Logger.makeRecord`` attaches ``extra`` only after the factory has run (an access line's
    path is the client's, and may hold anything).
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # which worker of ``serve --workers N``
        }
        scrub = SECRETS.redactor.scrub
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = scrub(value) if isinstance(value, str | dict | list) else value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return _ENCODER.encode(entry)


# LogRecord.created, as the running Python's LogRecord computes it.
_now = time.time if sys.version_info < (3, 13) else (lambda: time.time_ns() / 1e9)

_pid = os.getpid()  # LogRecord.process, without a system call per line


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


_second_shown: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def iso_milliseconds(created: float) -> str:
    """``datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")``, with the
    date and time of day formatted once a second: datetime rounds the fraction to whole
    microseconds (half to even, carrying into the second) and the milliseconds truncate."""
    global _second_shown
    if created < 0:
        return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    fraction, whole = math.modf(created)
    microseconds = round(fraction * 1e6)
    second = int(whole)
    if microseconds >= 1_000_000:
        microseconds -= 1_000_000
        second += 1
    shown, prefix = _second_shown
    if shown != second:
        prefix = datetime.fromtimestamp(second, UTC).isoformat()[:19]  # 2026-12-07T08:21:05
        _second_shown = (second, prefix)
    return f"{prefix}.{microseconds // 1000:03d}+00:00"


def log_info(
    logger: logging.Logger,
    msg: str,
    args: tuple[Any, ...],
    extra: dict[str, Any],
    *,
    made_here: Collection[str] = (),
) -> None:
    """``logger.info(msg, *args, extra=extra)``, the same line written without a ``LogRecord``
    when the one handler it would reach is :func:`configure_logging`'s.

    *made_here* names extra fields whose values this process made (a generated id, a
    database row's id): no client's or upstream's text, so no secret to scrub. The line
    without a record writes them as they are; a record's formatter scrubs every field.

    A record costs more than the line it becomes (the record factory, ``findCaller``, the
    handler chain): the access line of every request comes here
    (docs/performance.md#round-six-issue-17-the-http-layer). The line is the one
    :class:`JsonFormatter` would write for that record, with the record factory's message
    redaction (:func:`blockpilot.redaction.log_messages_scrubbed`) and the formatter's
    redaction of the extra fields. Anything else about logging (a handler or filter of the
    application's, another record factory, a handler level) takes ``logger.info`` itself.
    """
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _sole_json_handler(logger)
    scrubbed = log_messages_scrubbed()
    message = _message(msg, args)
    if (
        handler is None
        or scrubbed is None
        or message is None
        or not extra.keys().isdisjoint(_STANDARD)  # makeRecord refuses most of these
    ):
        logger.info(msg, *args, extra=extra)
        return
    handler.acquire()
    try:
        scrub = _scrubber(SECRETS.redactor)
        entry: dict[str, Any] = {
            "ts": iso_milliseconds(_now()),
            "level": "info",
            "logger": logger.name,
            "message": scrub(message) if scrubbed else message,
            "pid": _pid if logging.logProcesses else None,
        }
        for key, value in extra.items():
            if not key.startswith("_"):
                if isinstance(value, str | dict | list) and key not in made_here:
                    value = scrub(value)
                entry[key] = value
        handler.stream.write(_ENCODER.encode(entry) + handler.terminator)
        handler.flush()
    except RecursionError:
        raise
    except Exception:  # noqa: BLE001 - as StreamHandler.emit: reported, never raised
        handler.handleError(logger.makeRecord(logger.name, logging.INFO, "", 0, msg, args, None))
    finally:
        handler.release()


_CLEAN_TEXTS_KEPT = 4096
_clean: tuple[Redactor | None, set[str]] = (None, set())  # texts a redactor left as they were


def _scrubber(redactor: Redactor) -> Callable[[Any], Any]:
    """*redactor*'s ``scrub``, remembering the texts it leaves unchanged.

    Access lines repeat their path and most of their message ("POST /api/v1/tools/run_block
    200 4.1ms"): a text this redactor found nothing in is not searched again. What the
    registry's redactor finds changes only when a secret is added, and then the registry
    has a new redactor and the texts kept are dropped (a line written by another thread
    while a secret is being added may or may not be scrubbed of it, with or without this).
    Only clean texts are kept, never one that held a secret. Called under the handler's lock.
    """
    global _clean
    seen_by, clean = _clean
    if seen_by is not redactor or len(clean) > _CLEAN_TEXTS_KEPT:
        clean = set()
        _clean = (redactor, clean)

    def scrub(value: Any) -> Any:
        if type(value) is not str:
            return redactor.scrub(value)
        if value in clean:
            return value
        scrubbed = redactor.scrub_text(value)
        if scrubbed == value:
            clean.add(value)
        return scrubbed

    return scrub


def _message(msg: str, args: tuple[Any, ...]) -> str | None:
    """``msg % args`` as ``LogRecord.getMessage`` formats positional arguments; None for
    what only a record handles as a record does (no arguments, one mapping, an error)."""
    if not args or (len(args) == 1 and isinstance(args[0], Mapping)):
        return None
    try:
        return str(msg) % args
    except Exception:  # noqa: BLE001 - the record's own error handling decides
        return None


def _sole_json_handler(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The handler a record of *logger* at INFO reaches, when it is the only one and is a
    plain ``StreamHandler`` with a :class:`JsonFormatter` and no filters (as
    :func:`configure_logging` makes it); else None. Walks the loggers as ``callHandlers``."""
    if logger.filters:
        return None
    found: logging.Handler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if found is not None:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    if (
        type(found) is not logging.StreamHandler
        or type(found.formatter) is not JsonFormatter
        or found.filters
        or found.level > logging.INFO
    ):
        return None
    return found


def configure_logging(level: str = "INFO") -> None:
    """Send every log record to stderr as JSON lines (replaces the root handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic narrates every start-up migration check at INFO; its warnings still show.
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))
