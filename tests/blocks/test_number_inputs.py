"""Number inputs of built-in blocks refuse true/false (pydantic's lax mode read them as 1/0).

Regression: ``{"operation": "add", "a": true, "b": 2}`` ran the Calculator and answered 3.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from blockpilot.blocks.base import Block
from blockpilot.blocks.registry import BUILTIN_MODULES, BlockRegistry, module_source
from blockpilot.blocks.schema import Integer, Number
from blockpilot.errors import BlockInputError


def _number_fields() -> list[tuple[Block, str, str]]:
    registry = BlockRegistry([(m, module_source(m)) for m in BUILTIN_MODULES])
    found = []
    for block in registry.all():
        for name, prop in block.Input.jsonschema()["properties"].items():
            types = {prop.get("type")} | {p.get("type") for p in prop.get("anyOf", [])}
            for kind in ("number", "integer"):
                if kind in types:
                    found.append((block, name, kind))
    return found


NUMBER_FIELDS = _number_fields()


def test_the_built_in_blocks_have_number_inputs_to_check() -> None:
    names = {(block.name, field) for block, field, _ in NUMBER_FIELDS}
    assert {("CalculatorBlock", "a"), ("CalculatorBlock", "b")} <= names
    assert ("AITextGeneratorBlock", "max_tokens") in names
    assert ("SendEmailBlock", "smtp_port") in names


@pytest.mark.parametrize(
    ("block", "field", "kind"),
    NUMBER_FIELDS,
    ids=[f"{b.name}.{f}" for b, f, _ in NUMBER_FIELDS],
)
@pytest.mark.parametrize("value", [True, False])
def test_built_in_number_inputs_refuse_booleans(
    block: Block, field: str, kind: str, value: bool
) -> None:
    with pytest.raises(BlockInputError) as caught:
        block.validate_input({field: value})
    errors: dict[str, list[str]] = caught.value.details["errors"]
    assert any("not a boolean" in message for message in errors[field]), errors


@pytest.mark.parametrize(
    ("annotation", "value", "expected"),
    [
        (Number, 2, 2.0),
        (Number, -2.5, -2.5),
        (Number, 0, 0.0),
        (Integer, 7, 7),
        (Integer, 0, 0),
    ],
)
def test_ints_and_floats_are_still_numbers(annotation: Any, value: Any, expected: Any) -> None:
    result = TypeAdapter(annotation).validate_python(value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("annotation", [Number, Integer])
@pytest.mark.parametrize("value", [True, False])
def test_number_types_refuse_booleans_in_python_and_json(annotation: Any, value: bool) -> None:
    adapter = TypeAdapter(annotation)
    with pytest.raises(ValidationError, match="not a boolean"):
        adapter.validate_python(value)
    with pytest.raises(ValidationError, match="not a boolean"):
        adapter.validate_json("true" if value else "false")


def test_number_json_schema_is_unchanged() -> None:
    assert TypeAdapter(Number).json_schema() == {"type": "number"}
    assert TypeAdapter(Integer).json_schema() == {"type": "integer"}
