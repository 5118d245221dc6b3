"""Basic blocks: arithmetic, text templates, constants."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from typing import Any, Literal

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Number, SchemaField

Operation = Literal["add", "subtract", "multiply", "divide", "power", "modulus"]
_MAX_RESULT_DIGITS = 1000
_OPERATIONS: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add,
    "subtract": operator.sub,
    "multiply": operator.mul,
    "divide": operator.truediv,
    "power": operator.pow,
    "modulus": operator.mod,
}


class CalculatorBlock(Block):
    id = "b1ab9b19-67a6-406d-abf5-2dba76d00c79"
    effect = BlockEffect.READ
    description = (
        "Performs a mathematical operation (add, subtract, multiply, divide, power, modulus) "
        "on two numbers."
    )
    categories = frozenset({BlockCategory.LOGIC})

    class Input(BlockSchemaInput):
        operation: Operation = SchemaField(description="The operation to perform")
        # Finite only: "NaN"/"Infinity" are wrong values the model can fix, not block failures;
        # and never true/false, which plain float fields would read as 1/0.
        a: Number = SchemaField(description="The first number")
        b: Number = SchemaField(description="The second number")
        round_result: bool = SchemaField(
            default=False, description="Round the result to a whole number"
        )

    class Output(BlockSchemaOutput):
        result: float = SchemaField(description="The result of the calculation")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        a, b = input_data.a, input_data.b
        op = input_data.operation
        if op in ("divide", "modulus") and b == 0:
            yield "error", "Cannot divide by zero; use a non-zero second number"
            return
        if (
            op == "power"
            and a not in (0, 1, -1)
            and abs(b) * math.log10(max(abs(a), 1e-300)) > _MAX_RESULT_DIGITS
        ):
            yield (
                "error",
                f"The result would have more than {_MAX_RESULT_DIGITS} digits; use smaller numbers",
            )
            return
        try:
            result = _OPERATIONS[op](a, b)
        except (OverflowError, ZeroDivisionError) as exc:
            yield "error", f"Calculation failed: {exc}"
            return
        if isinstance(result, complex) or math.isnan(result) or math.isinf(result):
            yield "error", "The result is not a finite real number"
            return
        yield "result", float(round(result)) if input_data.round_result else result


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class FillTextTemplateBlock(Block):
    id = "db7d8f02-2f44-4c55-ab7a-eae0941f0c30"
    effect = BlockEffect.READ
    description = (
        "Fills a text template: each {{ name }} placeholder is replaced by the value of that name."
    )
    categories = frozenset({BlockCategory.TEXT})

    class Input(BlockSchemaInput):
        format: str = SchemaField(
            description="Template text with {{ name }} placeholders",
            placeholder="Hello, {{ name }}!",
            max_length=100_000,
        )
        values: dict[str, Any] = SchemaField(description="Values for the placeholders, by name")

    class Output(BlockSchemaOutput):
        output: str = SchemaField(description="The filled-in text")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        # Only plain names are substituted: no attribute access or code, unlike str.format or Jinja.
        missing = sorted(
            {m.group(1) for m in _PLACEHOLDER.finditer(input_data.format)}
            - input_data.values.keys()
        )
        if missing:
            yield "error", f"No value for placeholder(s): {', '.join(missing)}; add them to values"
            return
        yield (
            "output",
            _PLACEHOLDER.sub(lambda m: str(input_data.values[m.group(1)]), input_data.format),
        )


class StoreValueBlock(Block):
    id = "1ff065e9-88e8-4358-9d82-8dc91f622ba9"
    effect = BlockEffect.READ
    description = (
        "Stores a value and outputs it: outputs 'data' if given, otherwise 'input'. "
        "Useful as a constant."
    )
    categories = frozenset({BlockCategory.BASIC})

    class Input(BlockSchemaInput):
        input: Any = SchemaField(
            description="Trigger, or the value to output when data is not given"
        )
        data: Any = SchemaField(default=None, description="The constant value to output")

    class Output(BlockSchemaOutput):
        output: Any = SchemaField(description="The stored value")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        yield "output", input_data.data if input_data.data is not None else input_data.input
