"""CalculatorBlock, FillTextTemplateBlock and StoreValueBlock through run_block."""

from __future__ import annotations

import asyncio
import time

import pytest

from blockpilot.blocks.library.basic import CalculatorBlock, FillTextTemplateBlock, StoreValueBlock

CALC = CalculatorBlock.id
TEMPLATE = FillTextTemplateBlock.id
STORE = StoreValueBlock.id


# --------------------------------------------------------------------------- Calculator


OPERATIONS = [
    ("add", 2, 3, 5.0),
    ("subtract", 2, 3.5, -1.5),
    ("multiply", -4, 2.5, -10.0),
    ("divide", 7, 2, 3.5),
    ("power", 2, 10, 1024.0),
    ("power", 4, 0.5, 2.0),
    ("modulus", 7, 3, 1.0),
    ("modulus", -7, 3, 2.0),
]


async def test_calculator_each_operation(pilot, alice, run) -> None:
    for operation, a, b, expected in OPERATIONS:
        r = await run(pilot, alice, CALC, {"operation": operation, "a": a, "b": b})
        assert r["type"] == "block_output", (operation, r)
        assert r["success"] is True
        assert r["outputs"] == {"result": [pytest.approx(expected)]}, operation


async def test_calculator_round_result(pilot, alice, run) -> None:
    r = await run(
        pilot, alice, CALC, {"operation": "divide", "a": 10, "b": 4, "round_result": True}
    )
    assert r["outputs"] == {"result": [2.0]}  # round half to even, as Python does
    r = await run(
        pilot, alice, CALC, {"operation": "divide", "a": 11, "b": 4, "round_result": True}
    )
    assert r["outputs"] == {"result": [3.0]}
    r = await run(
        pilot, alice, CALC, {"operation": "divide", "a": 10, "b": 4, "round_result": False}
    )
    assert r["outputs"] == {"result": [2.5]}


async def test_calculator_by_zero_is_block_error(pilot, alice, run) -> None:
    for operation in ("divide", "modulus"):
        r = await run(pilot, alice, CALC, {"operation": operation, "a": 1, "b": 0})
        assert r["type"] == "error", r
        assert r["code"] == "block_failed"
        assert "zero" in r["message"].lower()
        assert r["message"].startswith("Block execution failed:")


async def test_calculator_absurd_power_is_error_not_hang(pilot, alice, run) -> None:
    for a, b in [(10, 1e308), (2, 1e9), (1e300, 1e300), (-3, 1e12), (0.5, -1e9), (10, 1001)]:
        started = time.monotonic()
        data = {"operation": "power", "a": a, "b": b}
        r = await asyncio.wait_for(run(pilot, alice, CALC, data), 5)
        assert time.monotonic() - started < 5
        assert r["type"] == "error", (a, b, r)
        assert r["code"] == "block_failed"


async def test_calculator_power_that_underflows_or_is_complex(pilot, alice, run) -> None:
    # (-8) ** 0.5 is complex: an error, not a crash.
    r = await run(pilot, alice, CALC, {"operation": "power", "a": -8, "b": 0.5})
    assert r["type"] == "error" and r["code"] == "block_failed", r
    # 1 ** anything and 0 ** positive are fine even with huge exponents.
    r = await run(pilot, alice, CALC, {"operation": "power", "a": 1, "b": 1e308})
    assert r["outputs"] == {"result": [1.0]}
    r = await run(pilot, alice, CALC, {"operation": "power", "a": 0, "b": 1e308})
    assert r["outputs"] == {"result": [0.0]}


async def test_calculator_zero_to_negative_power_is_block_error(pilot, alice, run) -> None:
    r = await run(pilot, alice, CALC, {"operation": "power", "a": 0, "b": -1})
    assert r["type"] == "error", r
    assert r["code"] == "block_failed"


async def test_calculator_overflowing_multiply_is_block_error(pilot, alice, run) -> None:
    r = await run(pilot, alice, CALC, {"operation": "multiply", "a": 1e308, "b": 10})
    assert r["type"] == "error" and r["code"] == "block_failed", r
    assert "finite" in r["message"]


async def test_calculator_wrong_types_are_input_validation_errors(pilot, alice, run) -> None:
    cases = [
        ({"operation": "add", "a": "two", "b": 3}, "a"),
        ({"operation": "add", "a": 2, "b": [3]}, "b"),
        ({"operation": "root", "a": 2, "b": 3}, "operation"),
        ({"operation": "add", "a": 2, "b": 3, "round_result": "perhaps"}, "round_result"),
        ({"operation": "add", "a": {"x": 1}, "b": 3}, "a"),
    ]
    for input_data, bad_field in cases:
        r = await run(pilot, alice, CALC, input_data)
        assert r["type"] == "input_validation_error", r
        assert r["code"] == "invalid_input"
        assert bad_field in r["errors"], (input_data, r["errors"])
        assert "not executed" in r["message"]
    # Nothing was executed, so nothing was recorded.
    assert await pilot.executions.list(alice.id) == []


async def test_calculator_non_finite_number_is_input_validation_error(pilot, alice, run) -> None:
    # Regression: "NaN"/"Infinity" were accepted as numbers and only failed inside the block.
    for value in ["NaN", "nan", "Infinity", "-inf", "1e400", 10**400]:
        r = await run(pilot, alice, CALC, {"operation": "add", "a": 1, "b": value})
        assert r["type"] == "input_validation_error", (value, r)
        assert "b" in r["errors"]
        assert r["inputs"]["properties"]["b"]["type"] == "number"


async def test_calculator_booleans_are_not_numbers(pilot, alice, run) -> None:
    # Regression: pydantic's lax mode read true/false as 1/0, so "true + 2" answered 3.
    for a, b in [(True, 2), (2, False), (True, True)]:
        r = await run(pilot, alice, CALC, {"operation": "add", "a": a, "b": b})
        assert r["type"] == "input_validation_error", (a, b, r)
        assert r["code"] == "invalid_input"
        bad = {name for name, value in (("a", a), ("b", b)) if isinstance(value, bool)}
        assert set(r["errors"]) == bad, r["errors"]
        for name in bad:
            assert any("not a boolean" in m for m in r["errors"][name]), r["errors"]
    assert await pilot.executions.list(alice.id) == []
    # Whole numbers and floats are still numbers.
    r = await run(pilot, alice, CALC, {"operation": "add", "a": 1, "b": 0.5})
    assert r["outputs"] == {"result": [1.5]}


async def test_calculator_missing_input_shows_details(pilot, alice, run) -> None:
    r = await run(pilot, alice, CALC, {"operation": "add", "a": 1})
    assert r["type"] == "block_details", r
    assert "b" in r["block"]["inputs"]["properties"]


async def test_calculator_misspelled_field_is_not_dropped(pilot, alice, run) -> None:
    r = await run(pilot, alice, CALC, {"operation": "add", "a": 1, "b": 2, "round": True})
    assert r["type"] == "input_validation_error"
    assert r["unrecognized_fields"] == ["round"]


# --------------------------------------------------------------------------- templates


async def test_template_fills_placeholders(pilot, alice, run) -> None:
    r = await run(
        pilot,
        alice,
        TEMPLATE,
        {
            "format": "Hello, {{ name }}! You are {{age}} and {{ name }} again.",
            "values": {"name": "Ada", "age": 36},
        },
    )
    assert r["type"] == "block_output", r
    assert r["outputs"] == {"output": ["Hello, Ada! You are 36 and Ada again."]}


async def test_template_missing_value_is_error(pilot, alice, run) -> None:
    r = await run(
        pilot, alice, TEMPLATE, {"format": "Hi {{ name }} from {{ city }}", "values": {"name": "x"}}
    )
    assert r["type"] == "error" and r["code"] == "block_failed", r
    assert "city" in r["message"]
    assert "name" not in r["message"].split("placeholder(s):")[-1]


CODE_TEMPLATES = [
    "{{ x.__class__ }}",
    "{{ x.__class__.__mro__ }}",
    "{{ x['a'] }}",
    "{{ x() }}",
    "{{ 7*7 }}",
    "{x.__class__}",
    "{0.__class__}",
    "{% for i in range(3) %}{{ i }}{% endfor %}",
]


async def test_template_never_evaluates_code(pilot, alice, run) -> None:
    for template in CODE_TEMPLATES:
        data = {"format": template, "values": {"x": "text", "i": 1}}
        r = await run(pilot, alice, TEMPLATE, data)
        assert r["type"] == "block_output", r
        out = r["outputs"]["output"][0]
        assert "<class" not in out and "49" not in out, template
        assert "str" not in out.replace("text", ""), template  # no type names leaked
        if "{{ i }}" in template:
            assert out == "{% for i in range(3) %}1{% endfor %}"
        else:
            assert out == template  # not a plain placeholder: left as written


async def test_template_values_are_not_re_expanded(pilot, alice, run) -> None:
    r = await run(
        pilot, alice, TEMPLATE, {"format": "{{ a }}", "values": {"a": "{{ b }}", "b": "secret"}}
    )
    assert r["outputs"] == {"output": ["{{ b }}"]}


async def test_template_values_must_be_an_object(pilot, alice, run) -> None:
    r = await run(pilot, alice, TEMPLATE, {"format": "{{ a }}", "values": ["a"]})
    assert r["type"] == "input_validation_error"
    assert "values" in r["errors"]


# --------------------------------------------------------------------------- store value


async def test_store_value_outputs_data_when_given(pilot, alice, run) -> None:
    r = await run(pilot, alice, STORE, {"input": "trigger", "data": {"k": [1, 2]}})
    assert r["outputs"] == {"output": [{"k": [1, 2]}]}


async def test_store_value_outputs_input_otherwise(pilot, alice, run) -> None:
    r = await run(pilot, alice, STORE, {"input": [1, "two", None]})
    assert r["outputs"] == {"output": [[1, "two", None]]}


async def test_store_value_keeps_falsy_data(pilot, alice, run) -> None:
    r = await run(pilot, alice, STORE, {"input": "trigger", "data": 0})
    assert r["outputs"] == {"output": [0]}
    r = await run(pilot, alice, STORE, {"input": "trigger", "data": ""})
    assert r["outputs"] == {"output": [""]}
    r = await run(pilot, alice, STORE, {"input": "trigger", "data": False})
    assert r["outputs"] == {"output": [False]}
