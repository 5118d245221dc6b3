"""The flat-input shortcut of ``input_shape_problem`` answers exactly as the full walk does:
the same problem (or none) for every dict of strings, numbers, NaN, nesting and sizes."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blockpilot.runner import _walk_shape_problem, input_shape_problem

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
value = st.one_of(
    leaf,
    st.lists(leaf, max_size=3),
    st.dictionaries(st.text(max_size=5), leaf, max_size=3),
)


@FAST
@given(
    st.dictionaries(st.text(max_size=12), value, max_size=8),
    st.integers(0, 300),
    st.integers(0, 4),
)
def test_the_shortcut_answers_as_the_walk(data: dict[str, Any], max_bytes: int, depth: int) -> None:
    expected = _walk_shape_problem(data, max_bytes, depth)
    assert input_shape_problem(data, max_bytes=max_bytes, max_depth=depth) == expected


def test_which_problem_comes_first_is_kept() -> None:
    # The walk meets the last value first: a NaN after a long text is reported only if the
    # text did not already overflow, and the other way round.
    nan_last = {"text": "x" * 100, "n": float("nan")}
    text_last = {"n": float("nan"), "text": "x" * 100}
    for data in (nan_last, text_last):
        for max_bytes in (10, 50, 1_000):
            assert input_shape_problem(data, max_bytes=max_bytes) == _walk_shape_problem(
                data, max_bytes, 64
            )
    assert "NaN" in (input_shape_problem(nan_last, max_bytes=50) or "")
    assert "larger than" in (input_shape_problem(text_last, max_bytes=50) or "")
