"""Small helpers shared by the SQL stores."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


_SURROGATE = re.compile("[\ud800-\udfff]")


_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def storable(value: Any) -> Any:
    """*value* with lone surrogates (invalid in UTF-8, refused by PostgreSQL) as U+FFFD, and
    NaN and infinities (not JSON, refused by PostgreSQL's json type) as the strings
    ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.

    Audit copies of model-supplied text can hold anything JSON can escape; the database
    must still take them.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return _NON_FINITE[str(value)]
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return _SURROGATE.sub("\ufffd", value)
        return value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value
