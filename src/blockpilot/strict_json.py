"""Strict JSON for every text input path (HTTP bodies, CLI options).

Stricter than :func:`json.loads`: ``NaN``/``Infinity``, numbers that overflow a float,
duplicate keys (one value would silently win), nesting deeper than :data:`MAX_DEPTH` and
strings with lone surrogates (``"\\ud800"``: no Unicode text, so nothing can encode them as
UTF-8 later, in a response, a log line or the database) are refused. Error messages give the
position, never the text: it may hold secrets.

Bytes must be UTF-8 (RFC 8259 §8.1). :func:`json.loads` would guess UTF-16 or UTF-32 from
the first bytes and read them too; here they are refused with a message telling the sender
to use UTF-8 (a JSON text never holds a raw NUL byte, so NULs mark UTF-16/32 even when the
bytes happen to be valid UTF-8). A leading UTF-8 byte order mark is stripped, as RFC 8259
allows a parser to: it says nothing but "this is UTF-8", and some Windows tools add it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from blockpilot.errors import StrictJSONError

MAX_DEPTH = 64


class _Rejected(ValueError):
    pass


def _no_constants(name: str) -> Any:
    raise _Rejected(f"{name} is not valid JSON (use a number or null)")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Rejected(f"the number {text[:40]} is too large")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):  # a key came twice: name the first one that did
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Rejected(f"duplicate key {key[:80]!r}")
            seen.add(key)
    return result


# json.loads with hooks builds a decoder (and its scanner) on every call; this one is built
# once. It keeps no state between calls.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_keys, parse_constant=_no_constants, parse_float=_finite_float
)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _problem(value: Any, max_depth: int) -> str | None:
    """Too deep, or a string that is not Unicode text. Iterative, so checking cannot itself
    exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                return (
                    "a string holds a lone surrogate (\\ud800-\\udfff), which is not Unicode text"
                )
            continue
        if isinstance(node, dict):
            children: Any = [*node.keys(), *node.values()]
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            return f"it is nested deeper than {max_depth} levels"
        stack.extend((child, depth + 1) for child in children)
    return None


_UTF8_BOM = b"\xef\xbb\xbf"
_NOT_UTF8 = "send JSON encoded as UTF-8 (RFC 8259)"


def decode_utf8(data: bytes) -> str:
    """*data* as UTF-8 text, without a leading byte order mark.

    Raises:
        StrictJSONError: *data* is not UTF-8 (UTF-16 and UTF-32 are named as such).
    """
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise StrictJSONError(f"it starts with a UTF-16 byte order mark; {_NOT_UTF8}")
    if b"\x00" in data:
        # A JSON text holds no raw NUL byte (inside strings it must be escaped): NULs are
        # how UTF-16 and UTF-32 encode ASCII, and would otherwise pass as valid UTF-8.
        raise StrictJSONError(f"it holds NUL bytes, as UTF-16 and UTF-32 do; {_NOT_UTF8}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StrictJSONError(f"it is not valid UTF-8 (byte {exc.start}); {_NOT_UTF8}") from None


def loads_strict(data: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse *data*, refusing what :mod:`blockpilot.strict_json` refuses.

    Bytes are read as UTF-8 only (see :func:`decode_utf8`: a UTF-8 byte order mark is
    stripped, UTF-16 and UTF-32 are refused).

    Raises:
        StrictJSONError: what is wrong, and where.
    """
    if isinstance(data, bytes | bytearray):
        data = decode_utf8(bytes(data))
    try:
        if data.startswith("\ufeff"):  # as json.loads refuses a str with a byte order mark
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", data, 0)
        value = _DECODER.decode(data)
    except _Rejected as exc:
        raise StrictJSONError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise StrictJSONError(
            f"{exc.msg} at line {exc.lineno} column {exc.colno} (char {exc.pos})"
        ) from None
    except RecursionError:
        raise StrictJSONError(f"it is nested deeper than {max_depth} levels") from None
    except ValueError:
        raise StrictJSONError("a number is out of range") from None
    if _may_have_problem(data, max_depth):
        problem = _problem(value, max_depth)
        if problem is not None:
            raise StrictJSONError(problem)
    return value


def _may_have_problem(text: str, max_depth: int) -> bool:
    """False when the parsed value of *text* cannot be too deep or hold a lone surrogate: no
    more brackets than *max_depth* (a value nested n deep needs n), no ``\\u`` escape and no
    surrogate in the text itself. Cheaper than walking the value (every HTTP body passes)."""
    return (
        text.count("[") + text.count("{") > max_depth
        or "\\u" in text
        or _SURROGATE.search(text) is not None
    )


def json_type_name(value: Any) -> str:
    """``an array``, ``a string``... for messages such as "must be an object, not an array"."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def replace_lone_surrogates(value: Any) -> Any:
    """*value* with every lone surrogate in its strings (keys too) replaced by U+FFFD.

    For JSON that came from elsewhere (an upstream response, a block's output): such text
    cannot be encoded as UTF-8, so it would break every response, log line or file it
    reached. Only what needs changing is copied.

    Raises:
        ValueError: *value* is nested too deeply to walk.
    """
    try:
        return _replace(value)
    except RecursionError:
        raise ValueError("the value is nested too deeply") from None


def _replace(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {_replace(k): _replace(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace(v) for v in value]
    return value
