"""Strict parsing of the JSON given on the command line (``--json``, ``--args``, ``--input``).

Stricter than :func:`json.loads`: ``NaN``/``Infinity`` and duplicate keys are rejected
(a duplicate would silently drop one value), and so is nesting deeper than
:data:`MAX_DEPTH`. Errors name the option and, for syntax errors, the position.
"""

from __future__ import annotations

import sys
from typing import Any

from blockpilot.errors import InvalidInputError, StrictJSONError
from blockpilot.strict_json import MAX_DEPTH, json_type_name, loads_strict

STDIN = "-"


def read_json_option(text: str, option: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse *text* given for *option*; ``-`` reads the document from standard input.

    Raises:
        InvalidInputError: naming the option and what is wrong (exit code 2).
    """
    document: str | bytes = text
    if text == STDIN:
        # Bytes, so that text that is not UTF-8 is the parser's clear error, not a crash.
        buffer = getattr(sys.stdin, "buffer", None)
        try:
            document = buffer.read() if buffer is not None else sys.stdin.read()
        except UnicodeDecodeError:
            raise InvalidInputError(f"{option} is not valid JSON: it is not valid UTF-8") from None
    try:
        return loads_strict(document, max_depth=max_depth)
    except StrictJSONError as exc:
        raise InvalidInputError(f"{option} is not valid JSON: {exc}") from None


def read_json_object(text: str, option: str) -> dict[str, Any]:
    """Like :func:`read_json_option`, and the document must be a JSON object."""
    value = read_json_option(text, option)
    if not isinstance(value, dict):
        raise InvalidInputError(
            f'{option} must be a JSON object such as \'{{"key": "value"}}\', '
            f"not {json_type_name(value)}"
        )
    return value
