"""Regression tests for core bugs, named after what went wrong."""

from __future__ import annotations

import asyncio
import time

import pytest

from blockpilot.pilot import Pilot

STORE_VALUE = "1ff065e9-88e8-4358-9d82-8dc91f622ba9"
WRITE_FILE = "5a0a5a52-6f3c-4c55-8c39-1f0f5d0b7d21"  # WriteWorkspaceFileBlock, effect write
LLM = "1f292d4a-41a4-4977-9684-7c8d560b9f91"


async def test_cut_output_larger_than_the_workspace_limit_still_completes(
    settings_factory, home
) -> None:
    pilot = await Pilot.open(settings_factory(max_file_bytes=100, max_output_chars=1000))
    try:
        user, _ = await pilot.users.create("carol")
        response = await pilot.call_tool(
            "run_block",
            {"block_id": STORE_VALUE, "input_data": {"input": "x" * 5000}},
            user_id=user.id,
        )
        assert response.type == "block_output", response
        assert response.output_truncated is True
        value = response.outputs["output"][0]
        assert "too large to keep in the workspace" in value
        assert len(value) < 1000
        [record] = await pilot.executions.list(user.id)
        assert record.status == "completed"
    finally:
        await pilot.close()


async def test_expired_api_key_is_not_matched(pilot: Pilot, alice) -> None:
    await pilot.add_credentials(
        alice.id,
        {
            "provider": "openai",
            "type": "api_key",
            "api_key": "sk-expired-0123456789",
            "expires_at": int(time.time()) - 10,
        },
    )
    response = await pilot.call_tool(
        "run_block",
        {"block_id": LLM, "input_data": {"prompt": "hi", "model": "gpt-4o-mini"}},
        user_id=alice.id,
    )
    assert response.type == "setup_requirements"
    assert (
        response.setup_info.user_readiness.missing_credentials["credentials"]["provider"]
        == "openai"
    )


async def test_empty_input_shows_details_even_when_every_input_is_optional(
    pilot: Pilot, alice
) -> None:
    list_files = "9c7f3e61-1b2d-4f57-8c0e-6a3d5b4e2f90"
    response = await pilot.call_tool(
        "run_block", {"block_id": list_files, "input_data": {}}, user_id=alice.id
    )
    assert response.type == "block_details"
    assert "prefix" in response.block.inputs["properties"]
    ran = await pilot.call_tool(
        "run_block", {"block_id": list_files, "input_data": {"prefix": "/"}}, user_id=alice.id
    )
    assert ran.type == "block_output" and ran.outputs == {"files": [[]]}


def test_passwords_inside_urls_are_scrubbed_from_logs_and_messages() -> None:
    from blockpilot.redaction import Redactor

    text = Redactor().scrub_text("cannot connect to postgresql://admin:hunter2@db.internal/prod")
    assert "hunter2" not in text and "db.internal/prod" in text


async def test_lone_surrogates_in_input_do_not_break_the_execution_record(
    pilot: Pilot, alice
) -> None:
    # PostgreSQL refuses lone surrogates in JSON; the audit copy stores U+FFFD instead.
    response = await pilot.call_tool(
        "run_block",
        {"block_id": STORE_VALUE, "input_data": {"input": "a\ud800b"}},
        user_id=alice.id,
    )
    assert response.type == "block_output"
    [record] = await pilot.executions.list(alice.id)
    assert record.status == "completed"
    assert record.input_redacted == {"input": "a\ufffdb"}


async def test_a_run_cancelled_while_its_record_waits_for_a_group_commit_is_not_left_running(
    pilot: Pilot,
) -> None:
    writer = pilot.executions._writer
    if writer is None:
        pytest.skip("group commits are the SQLite writer's")
    user, _ = await pilot.users.create("dora")
    session = (await pilot.session_for(user.id, None)).session_id
    # A block that may change something: its running row is committed before it starts (a
    # read block's record is written once, finished, when the call ends: no group to wait in).
    args = {"block_id": WRITE_FILE, "input_data": {"path": "/dora.txt", "content": "x"}}
    # A first run makes the user's workspace, so that the next two go in step.
    assert (
        await pilot.call_tool("run_block", args, user_id=user.id, session_id=session)
    ).type == "block_output"
    runs = [
        asyncio.create_task(pilot.call_tool("run_block", args, user_id=user.id, session_id=session))
        for _ in range(2)
    ]
    async with asyncio.timeout(10):
        while not writer._group:  # the second run's running row waits for the group commit
            await asyncio.sleep(0)
    runs[1].cancel()
    assert (await runs[0]).type == "block_output"
    with pytest.raises(asyncio.CancelledError):
        await runs[1]
    await pilot.executions.flush()
    statuses = sorted(record.status for record in await pilot.executions.list(user.id))
    assert statuses == ["cancelled", "completed", "completed"]  # committed, then closed


@pytest.mark.parametrize(
    "value", [float("inf"), float("-inf"), float("nan"), {"deep": [1.0, float("inf")]}]
)
async def test_nan_and_infinity_in_input_data_are_refused_not_an_internal_error(
    pilot: Pilot, value: object
) -> None:
    # Found by Hypothesis on PostgreSQL: the record's JSON copy of the input held Infinity,
    # which PostgreSQL's json type refuses, and the run failed as an internal error.
    user, _ = await pilot.users.create("erin")
    response = await pilot.call_tool(
        "run_block",
        {"block_id": STORE_VALUE, "input_data": {"input": value}},
        user_id=user.id,
    )
    assert response.type == "error", response
    assert response.code == "invalid_input_data"
    assert "NaN or Infinity" in response.message
    assert await pilot.executions.list(user.id) == []  # refused before anything ran


def test_records_store_nan_and_infinity_as_strings() -> None:
    from blockpilot.storage.common import storable

    stored = storable({"a": float("inf"), "b": [float("-inf"), float("nan")], "c": 1.5})
    assert stored == {"a": "Infinity", "b": ["-Infinity", "NaN"], "c": 1.5}
