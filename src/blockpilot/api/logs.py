"""One JSON object per log line, with the ``extra`` fields of the record."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from blockpilot.redaction import SECRETS

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


def configure_logging(level: str = "INFO") -> None:
    """Send every log record to stderr as JSON lines (replaces the root handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic narrates every start-up migration check at INFO; its warnings still show.
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))
