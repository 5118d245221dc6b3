"""Execution records (docs/architecture.md): every run is audited and survives restarts."""

from __future__ import annotations

import asyncio
from typing import Any

from blockpilot.pilot import Pilot
from blockpilot.storage.common import utcnow
from blockpilot.storage.executions import ExecutionRecord
from blockpilot.storage.users import User
from tests.tools.bp_helpers import add_api_key, run_block
from tests.tools.bp_test_blocks import ApiKeyEchoBlock, EchoTextBlock, FailingBlock, SlowBlock


async def test_record_is_running_while_the_block_runs_then_completed(
    pilot: Pilot, alice: User
) -> None:
    task = asyncio.create_task(run_block(pilot, alice.id, SlowBlock.id, {"seconds": 0.1}))
    for _ in range(50):
        records = await pilot.executions.list(alice.id)
        if records:
            break
        await asyncio.sleep(0.005)
    assert [r.status for r in records] == ["running"]
    assert records[0].finished_at is None
    data = await task
    assert data["type"] == "block_output"
    record = await pilot.executions.get(alice.id, data["execution_id"])
    assert record is not None
    assert record.status == "completed"
    assert (
        record.finished_at is not None
        and record.duration_ms is not None
        and record.duration_ms >= 90
    )
    assert record.output_summary == {"pins": {"done": 1}, "truncated": False}
    assert record.block_id == SlowBlock.id and record.block_name == "SlowBlock"
    assert record.session_id == data["session_id"]
    assert record.user_id == alice.id


async def test_final_statuses(pilot: Pilot, alice: User) -> None:
    ok = await run_block(pilot, alice.id, EchoTextBlock.id, {"text": "x"})
    failed = await run_block(pilot, alice.id, FailingBlock.id, {"mode": "error_pin"})
    crashed = await run_block(pilot, alice.id, FailingBlock.id, {"mode": "crash"})
    timed_out = await run_block(pilot, alice.id, SlowBlock.id, {"seconds": 5})
    statuses = {
        r.block_name + ":" + (r.error_code or ""): r.status
        for r in await pilot.executions.list(alice.id)
    }
    assert statuses == {
        "EchoTextBlock:": "completed",
        "FailingBlock:block_failed": "failed",
        "FailingBlock:internal_error": "failed",
        "SlowBlock:block_timeout": "timed_out",
    }
    # Only executions have records; the error responses point at nothing else.
    assert ok["execution_id"]
    assert {failed["type"], crashed["type"], timed_out["type"]} == {"error"}


async def test_checks_that_stop_before_execution_write_no_record(pilot: Pilot, alice: User) -> None:
    await run_block(pilot, alice.id, EchoTextBlock.id, {})  # details
    await run_block(pilot, alice.id, EchoTextBlock.id, {"txet": "x"})  # unknown field
    await run_block(pilot, alice.id, EchoTextBlock.id, {"text": "x", "times": 0})  # invalid
    await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "x"})  # setup requirements
    assert await pilot.executions.list(alice.id) == []


async def test_record_input_is_redacted_and_clipped(pilot: Pilot, alice: User) -> None:
    await add_api_key(pilot, alice.id, key="sk-record-secret-0123456789")
    data = await run_block(
        pilot,
        alice.id,
        ApiKeyEchoBlock.id,
        {"prompt": "use sk-record-secret-0123456789 please " + "y" * 5000},
    )
    record = await pilot.executions.get(alice.id, data["execution_id"])
    assert record is not None
    prompt = record.input_redacted["prompt"]
    assert prompt.startswith("use [REDACTED] please ")
    assert "sk-record-secret" not in prompt
    assert len(prompt) < 2100 and "more characters" in prompt
    public = record.public()
    assert public["input"] == record.input_redacted
    assert public["credential_ids"] == record.credential_ids


async def test_a_record_left_running_becomes_interrupted_at_the_next_start(
    pilot_factory: Any, alice: User
) -> None:
    first = await pilot_factory()
    session = await first.sessions.create(alice.id)
    await first.executions.start(
        ExecutionRecord(
            id=f"copilot-{session.session_id}-deadbeef",
            user_id=alice.id,
            session_id=session.session_id,
            block_id=EchoTextBlock.id,
            block_name="EchoTextBlock",
            status="running",
            started_at=utcnow(),
            input_redacted={"text": "x"},
        )
    )
    done = await run_block(first, alice.id, EchoTextBlock.id, {"text": "y"})
    await first.close()  # the "crash"
    second = await pilot_factory()
    record = await second.executions.get(alice.id, f"copilot-{session.session_id}-deadbeef")
    assert record is not None
    assert record.status == "interrupted"
    assert record.error_code == "interrupted"
    assert record.finished_at is not None
    # Finished records are left alone.
    other = await second.executions.get(alice.id, done["execution_id"])
    assert other is not None and other.status == "completed"
