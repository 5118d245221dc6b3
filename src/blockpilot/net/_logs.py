"""Query strings stay out of logs: httpx logs every request's URL at INFO.

Block requests carry secrets in query strings (``?sig=…&token=…``, a presigned URL, an API
key some services take as a parameter) that no redaction knows about, so every URL httpx
logs loses its query (docs/security.md, "Logs").
"""

from __future__ import annotations

import logging
import re

# An http(s) URL's query: from "?" to the next whitespace, quote, fragment or end.
_QUERY = re.compile(r"(?i)(\bhttps?://[^\s?#\"']*)\?[^\s#\"']*")
QUERY_PLACEHOLDER = "?[query removed]"
_LOGGERS = ("httpx", "httpcore")


def without_query_strings(text: str) -> str:
    """*text* with the query of every http(s) URL in it replaced by a placeholder."""
    return _QUERY.sub(lambda m: m.group(1) + QUERY_PLACEHOLDER, text) if "?" in text else text


class QueryStringFilter(logging.Filter):
    """Rewrites a record's message so no URL in it keeps its query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = without_query_strings(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = QueryStringFilter()


def install_query_string_filter() -> None:
    """Attach the filter to the HTTP libraries' loggers (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
