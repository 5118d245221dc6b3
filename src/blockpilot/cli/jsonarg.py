"""Strict parsing of the JSON given on the command line (``--json``, ``--args``, ``--input``).

Stricter than :func:`json.loads`: ``NaN``/``Infinity`` and duplicate keys are rejected
(a duplicate would silently drop one value), and so is nesting deeper than
:data:`MAX_DEPTH`. Errors name the option and, for syntax errors, the position.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from blockpilot.errors import InvalidInputError

MAX_DEPTH = 64
STDIN = "-"


class _Rejected(ValueError):
    """A JSON document that parses but is not acceptable."""


def _no_constants(name: str) -> Any:
    raise _Rejected(f"{name} is not valid JSON (use a number or null)")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Rejected(f"duplicate key {key[:80]!r}")
        result[key] = value
    return result


def _too_deep(value: Any, max_depth: int) -> bool:
    # Iterative, so checking cannot itself exhaust the stack.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def read_json_option(text: str, option: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse *text* given for *option*; ``-`` reads the document from standard input.

    Raises:
        InvalidInputError: naming the option and what is wrong (exit code 2).
    """
    if text == STDIN:
        text = sys.stdin.read()
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"{option} is not valid JSON: {exc.msg} "
            f"at line {exc.lineno} column {exc.colno} (char {exc.pos})"
        ) from None
    except _Rejected as exc:
        raise InvalidInputError(f"{option} is not acceptable JSON: {exc}") from None
    except RecursionError:
        raise InvalidInputError(f"{option} is nested deeper than {max_depth} levels") from None
    if _too_deep(value, max_depth):
        raise InvalidInputError(f"{option} is nested deeper than {max_depth} levels")
    return value


def read_json_object(text: str, option: str) -> dict[str, Any]:
    """Like :func:`read_json_option`, and the document must be a JSON object."""
    value = read_json_option(text, option)
    if not isinstance(value, dict):
        raise InvalidInputError(
            f'{option} must be a JSON object such as \'{{"key": "value"}}\', not {_kind(value)}'
        )
    return value


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
