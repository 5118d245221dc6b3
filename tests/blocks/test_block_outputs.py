"""The runner gathers a block's outputs with ``Block.collect_into`` (no generator around
``run``): every output, check and failure is what ``Block.execute`` gives; a block with an
``execute`` of its own is still run through it (docs/blocks.md)."""

from __future__ import annotations

from typing import Any

import pytest

from blockpilot.blocks.base import Block, BlockOutput
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, SchemaField
from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from tests.tools.bp_helpers import make_registry, run_block
from tests.tools.bp_test_blocks import ALL_BLOCKS


class PinsBlock(Block):
    id = "0c5e7d1a-5b3f-4c2e-9a71-7e1d00000001"
    description = "Yields what it is told to, then misbehaves as told."

    class Input(BlockSchemaInput):
        then: str = SchemaField(default="", description="What to do after two good pins")

    class Output(BlockSchemaOutput):
        count: int = SchemaField(description="A number")
        words: list[str] = SchemaField(description="Some words")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        yield "count", "7"  # validated (and coerced) like any output
        yield "words", ["a", "b"]
        then = input_data.then
        if then == "error pin":
            yield "error", "the upstream said no"
        elif then == "unknown pin":
            yield "surprise", 1
        elif then == "invalid value":
            yield "count", "seven"
        elif then == "value error":
            raise ValueError("bad value from the block")
        elif then == "crash":
            raise KeyError("bug")
        yield "count", 8


OUTCOMES = ["", "error pin", "unknown pin", "invalid value", "value error", "crash"]


async def _through_execute(block: Block, typed: Any) -> tuple[dict[str, Any], Any]:
    collected: dict[str, list[Any]] = {}
    try:
        async for name, value in block.execute(typed):
            collected.setdefault(name, []).append(value)
    except Exception as exc:  # noqa: BLE001 - compared below
        return collected, (type(exc), str(exc))
    return collected, None


async def _through_collect_into(block: Block, typed: Any) -> tuple[dict[str, Any], Any]:
    collected: dict[str, list[Any]] = {}
    try:
        await block.collect_into(typed, collected, {})
    except Exception as exc:  # noqa: BLE001 - compared below
        return collected, (type(exc), str(exc))
    return collected, None


@pytest.mark.parametrize("then", OUTCOMES)
async def test_collect_into_gives_what_execute_gives(then: str) -> None:
    block = PinsBlock()
    typed = block.validate_input({"then": then})
    assert await _through_collect_into(block, typed) == await _through_execute(block, typed)


async def test_the_good_case_collects_every_validated_pin() -> None:
    block = PinsBlock()
    collected: dict[str, list[Any]] = {}
    await block.collect_into(block.validate_input({}), collected, {})
    assert collected == {"count": [7, 8], "words": [["a", "b"]]}


class OwnExecuteBlock(PinsBlock):
    id = "0c5e7d1a-5b3f-4c2e-9a71-7e1d00000002"
    description = "Overrides execute (a plug-in may): the runner must still call it."

    async def execute(self, input_data: Any, **kwargs: Any) -> BlockOutput:
        async for name, value in super().execute(input_data, **kwargs):
            yield name, value
        yield "words", ["from", "execute"]


@pytest.fixture
def pilot_registry() -> Any:
    return make_registry([*ALL_BLOCKS, PinsBlock, OwnExecuteBlock])


async def test_run_block_uses_an_execute_of_the_blocks_own(pilot: Pilot, alice: User) -> None:
    answer = await run_block(pilot, alice.id, OwnExecuteBlock.id, {"then": ""})
    assert answer["type"] == "block_output", answer
    assert answer["outputs"] == {"count": [7, 8], "words": [["a", "b"], ["from", "execute"]]}
    plain = await run_block(pilot, alice.id, PinsBlock.id, {"then": ""})
    assert plain["outputs"] == {"count": [7, 8], "words": [["a", "b"]]}


@pytest.mark.parametrize(
    ("then", "code", "message"),
    [
        ("error pin", "block_failed", "the upstream said no"),
        ("unknown pin", "invalid_output", "unknown output 'surprise'"),
        ("invalid value", "invalid_output", "invalid value for output 'count'"),
        ("value error", "block_failed", "bad value from the block"),
        ("crash", "internal_error", "KeyError"),
    ],
)
async def test_run_block_answers_each_failure_as_before(
    pilot: Pilot, alice: User, then: str, code: str, message: str
) -> None:
    answer = await run_block(pilot, alice.id, PinsBlock.id, {"then": then})
    assert answer["type"] == "error" and answer["code"] == code, answer
    assert message in answer["message"]
