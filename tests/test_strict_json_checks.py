"""The depth and lone-surrogate checks of strict JSON, at their edges.

Most bodies skip the walk over the parsed value (they have few brackets and no ``\\u``
escape); these cases sit right at the edges of that shortcut.
"""

from __future__ import annotations

import json

import pytest

from blockpilot.strict_json import MAX_DEPTH, StrictJSONError, loads_strict


def _nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    if opener == "{":
        return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)
    return opener * depth + closer * depth


@pytest.mark.parametrize(("opener", "closer"), [("[", "]"), ("{", "}")])
def test_nesting_up_to_the_limit_is_read_and_one_more_is_refused(opener: str, closer: str) -> None:
    assert loads_strict(_nested(MAX_DEPTH, opener, closer)) is not None
    with pytest.raises(StrictJSONError, match="nested deeper"):
        loads_strict(_nested(MAX_DEPTH + 1, opener, closer))
    with pytest.raises(StrictJSONError, match="nested deeper"):
        loads_strict(_nested(MAX_DEPTH + 1, opener, closer).encode())


def test_brackets_inside_strings_do_not_refuse_a_shallow_value() -> None:
    text = json.dumps({"text": "[" * 500 + "{" * 500})
    assert loads_strict(text) == {"text": "[" * 500 + "{" * 500}


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "\\ud800"}',  # an escape
        '{"a": ["x", {"b": "\\uDFFF"}]}',  # deep, upper case hex
        '{"\\ud83d": 1}',  # in a key
        '{"a": "\ud800"}',  # a raw surrogate in text given as str (CLI arguments)
    ],
)
def test_lone_surrogates_are_refused_however_they_are_written(text: str) -> None:
    with pytest.raises(StrictJSONError, match="lone surrogate"):
        loads_strict(text)


def test_escapes_that_are_not_lone_surrogates_are_read() -> None:
    assert loads_strict('{"a": "\\ud83d\\ude00 \\u00e9 \\\\u"}') == {"a": "\U0001f600 é \\u"}
