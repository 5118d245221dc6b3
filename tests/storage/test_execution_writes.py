"""When an execution record becomes durable (docs/performance.md, docs/architecture.md).

A block that may change something runs only once its ``running`` row is committed. A run
that changes nothing outside blockpilot (a ``read`` block, a dry run) may be written once,
finished, but its record is committed before the call answers, and a long one shows as
``running`` to every other connection while it runs. Checked on SQLite and PostgreSQL, by
reading the table through a connection of its own (never the store, whose reads flush).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from blockpilot.blocks.base import Block, BlockEffect, BlockOutput
from blockpilot.blocks.registry import BlockRegistry
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, SchemaField
from blockpilot.pilot import Pilot
from blockpilot.storage.tables import executions
from blockpilot.storage.users import User

#: Per test: set by a gated block when its body starts, and what it waits for to finish.
STARTED: dict[str, asyncio.Event] = {}
RELEASE: dict[str, asyncio.Event] = {}
#: What a gated block found in the table when its body started: status by record id.
SEEN_AT_START: dict[str, dict[str, str]] = {}


async def _statuses(pilot: Pilot) -> dict[str, str]:
    """Every record's status as another connection sees it (no flush of queued writes)."""
    async with pilot.engine.connect() as conn:
        rows = (await conn.execute(select(executions.c.id, executions.c.status))).all()
    return {row.id: row.status for row in rows}


class _Gated(Block):
    """Says it started, notes what the table held then, waits until released."""

    class Input(BlockSchemaInput):
        tag: str = SchemaField(description="Which test's gate")

    class Output(BlockSchemaOutput):
        tag: str = SchemaField(description="The same tag")

    pilot: Pilot | None = None

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        tag = input_data.tag
        assert _Gated.pilot is not None
        SEEN_AT_START[tag] = await _statuses(_Gated.pilot)
        STARTED[tag].set()
        await RELEASE[tag].wait()
        yield "tag", tag


class GatedWriteBlock(_Gated):
    id = "7c1e5d2a-0000-4f00-8a00-00000000b001"
    description = "Test only: a gated block that may change something."
    effect = BlockEffect.WRITE


class GatedReadBlock(_Gated):
    id = "7c1e5d2a-0000-4f00-8a00-00000000b002"
    description = "Test only: a gated block that changes nothing."
    effect = BlockEffect.READ


@pytest.fixture
def pilot_registry() -> BlockRegistry:
    return BlockRegistry([("gated", lambda: (GatedWriteBlock, GatedReadBlock))])


@pytest.fixture(autouse=True)
def _gated_pilot(pilot: Pilot) -> Any:
    _Gated.pilot = pilot
    yield
    _Gated.pilot = None


async def _run(pilot: Pilot, user: User, block: type[Block], tag: str, **extra: Any) -> Any:
    return await pilot.call_tool(
        "run_block",
        {"block_id": block.id, "input_data": {"tag": tag}, **extra},
        user_id=user.id,
    )


def _gate(tag: str, *, open_: bool = False) -> None:
    STARTED[tag] = asyncio.Event()
    RELEASE[tag] = asyncio.Event()
    if open_:
        RELEASE[tag].set()


async def test_a_block_that_may_change_something_starts_only_once_its_row_is_committed(
    pilot: Pilot, alice: User
) -> None:
    _gate("w")
    task = asyncio.create_task(_run(pilot, alice, GatedWriteBlock, "w"))
    await asyncio.wait_for(STARTED["w"].wait(), 30)
    assert list(SEEN_AT_START["w"].values()) == ["running"]  # already there when it began
    RELEASE["w"].set()
    response = await task
    assert response.type == "block_output"
    assert (await _statuses(pilot)) == {response.execution_id: "completed"}


async def test_a_read_block_called_with_an_idempotency_key_starts_only_once_its_row_is_committed(
    pilot: Pilot, alice: User
) -> None:
    # The key's claim names the execution id: a crash during the run must find its record.
    _gate("k")
    task = asyncio.create_task(_run(pilot, alice, GatedReadBlock, "k", idempotency_key="k-1"))
    await asyncio.wait_for(STARTED["k"].wait(), 30)
    assert list(SEEN_AT_START["k"].values()) == ["running"]
    RELEASE["k"].set()
    response = await task
    assert (await _statuses(pilot)) == {response.execution_id: "completed"}


async def test_a_short_read_run_is_committed_finished_before_the_call_answers(
    pilot: Pilot, alice: User
) -> None:
    _gate("r", open_=True)
    response = await _run(pilot, alice, GatedReadBlock, "r")
    assert response.type == "block_output"
    assert (await _statuses(pilot)) == {response.execution_id: "completed"}
    dry = await _run(pilot, alice, GatedWriteBlock, "r", dry_run=True)
    assert dry.type == "block_output" and dry.is_dry_run
    assert (await _statuses(pilot))[dry.execution_id] == "completed"
    record = await pilot.executions.get(alice.id, response.execution_id)
    assert record is not None and record.input_redacted == {"tag": "r"}
    assert record.finished_at is not None and record.output_summary == {
        "pins": {"tag": 1},
        "truncated": False,
    }


async def test_a_long_read_run_shows_as_running_to_other_connections(
    pilot: Pilot, alice: User
) -> None:
    _gate("long")
    task = asyncio.create_task(_run(pilot, alice, GatedReadBlock, "long"))
    await asyncio.wait_for(STARTED["long"].wait(), 30)
    for _ in range(3000):  # committed within the writer's deferral delay (50 ms)
        seen = await _statuses(pilot)
        if seen:
            break
        await asyncio.sleep(0.01)
    assert list(seen.values()) == ["running"]
    RELEASE["long"].set()
    response = await task
    assert (await _statuses(pilot)) == {response.execution_id: "completed"}


async def test_many_concurrent_read_and_write_runs_all_end_completed(
    pilot: Pilot, alice: User
) -> None:
    tags = [f"c{i}" for i in range(40)]
    for tag in tags:
        _gate(tag, open_=True)
    responses = await asyncio.gather(
        *(
            _run(pilot, alice, GatedReadBlock if i % 2 else GatedWriteBlock, tag)
            for i, tag in enumerate(tags)
        )
    )
    assert {r.type for r in responses} == {"block_output"}
    assert (await _statuses(pilot)) == {r.execution_id: "completed" for r in responses}
