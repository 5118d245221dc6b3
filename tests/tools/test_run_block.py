"""run_block (docs/architecture.md): every check in order with its message and code, then a run."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from blockpilot.blocks.base import Block
from blockpilot.executions.context import ExecutionContext
from blockpilot.pilot import Pilot, PreparedCall
from blockpilot.storage.users import User
from blockpilot.tools.base import ToolCall
from tests.tools.bp_helpers import add_api_key, run_block
from tests.tools.bp_test_blocks import (
    CALLS,
    ORCHESTRATOR_ID,
    ApiKeyEchoBlock,
    BigOutputBlock,
    ConfigDisabledByIdBlock,
    ConfigDisabledByNameBlock,
    DisabledFlagBlock,
    EchoTextBlock,
    FailingBlock,
    GraphInputBlock,
    GraphOutputBlock,
    HookTriggerBlock,
    HumanReviewBlock,
    OrchestratorLikeBlock,
    SlowBlock,
    StickyNoteBlock,
    calls_of,
)

SETUP_MESSAGE = (
    "Block 'ApiKeyEchoBlock' requires credentials that are not configured. Please set up the "
    "required credentials before running this block."
)


def assert_error(data: dict[str, Any], message: str, code: str) -> None:
    assert data["type"] == "error", data
    assert data["message"] == message
    assert data["code"] == code
    assert data["error"] == code


async def assert_nothing_ran(pilot: Pilot, user: User) -> None:
    assert CALLS == []
    assert await pilot.executions.list(user.id) == []


# --------------------------------------------------------------------------- steps 1-3


async def test_step1_missing_block_id(pilot: Pilot, alice: User) -> None:
    for block_id in ("", "   ", None, 42, ["x"]):
        # Even with an invalid input_data: step 1 comes first.
        data = await run_block(pilot, alice.id, block_id, "not an object")
        assert_error(data, "Please provide a block_id", "missing_block_id")


async def test_step1_block_id_is_stripped(pilot: Pilot, alice: User) -> None:
    data = await run_block(pilot, alice.id, f"  {EchoTextBlock.id}\n", {"text": "hi"})
    assert data["type"] == "block_output"
    assert data["block_id"] == EchoTextBlock.id


async def test_block_id_is_case_insensitive(pilot: Pilot, alice: User) -> None:
    # Regression: find_block accepted an upper-case id but run_block said "not found".
    found = await pilot.call_tool(
        "find_block", {"query": EchoTextBlock.id.upper()}, user_id=alice.id
    )
    assert found.type == "block_list"
    data = await run_block(pilot, alice.id, EchoTextBlock.id.upper(), {"text": "hi"})
    assert data["type"] == "block_output"
    assert data["block_id"] == EchoTextBlock.id


async def test_step2_input_data_must_be_an_object(pilot: Pilot, alice: User) -> None:
    for input_data in ([], [{"text": "x"}], "{}", '{"text": "x"}', None, 1, True):
        # An unknown block id too: step 2 comes before the lookup.
        data = await run_block(pilot, alice.id, "no-such-block", input_data)
        assert_error(data, "input_data must be an object", "invalid_input_data")
    await assert_nothing_ran(pilot, alice)


async def test_step2_input_data_with_non_string_keys_is_not_an_object(
    pilot: Pilot, alice: User
) -> None:
    # Regression (library callers): {1: ...} crashed while sorting the unknown field names.
    data = await run_block(pilot, alice.id, EchoTextBlock.id, {"text": "x", 1: "y"})
    assert_error(data, "input_data must be an object", "invalid_input_data")
    await assert_nothing_ran(pilot, alice)


async def test_step2_missing_input_data(pilot: Pilot, alice: User) -> None:
    data = await pilot.call_tool("run_block", {"block_id": EchoTextBlock.id}, user_id=alice.id)
    assert data.type == "error" and data.code == "invalid_input_data"  # type: ignore[attr-defined]


async def test_step3_sign_in_is_checked_once_before_the_runner(pilot: Pilot, alice: User) -> None:
    # Pilot.run_call is the one sign-in check (docs/architecture.md#where-sign-in-is-checked):
    # without a user, or with a user but no chat session, the runner is never reached.
    for user_id in (None, ""):
        data = await run_block(pilot, user_id, EchoTextBlock.id, {"text": "x"})
        assert data["type"] == "need_login"
        assert data["message"] == "Please sign in to use run_block"
        data = await run_block(pilot, user_id, "", [])  # before the argument checks, too
        assert data["type"] == "need_login"
    for name in pilot.tools:
        no_session = PreparedCall(pilot.tool(name), ToolCall(user_id=alice.id, session_id=None))
        response = await pilot.run_call(no_session, {})
        assert response.type == "need_login"
        assert response.message == f"Please sign in to use {name}"
    assert CALLS == []
    await assert_nothing_ran(pilot, alice)


# --------------------------------------------------------------------------- steps 4-6


async def test_step4_unknown_block(pilot: Pilot, alice: User) -> None:
    for block_id in ("no-such-block", "00000000-0000-4000-8000-000000000000", "EchoTextBlock"):
        data = await run_block(pilot, alice.id, block_id, {"bogus": 1})
        assert_error(data, f"Block '{block_id}' not found", "block_not_found")
    await assert_nothing_ran(pilot, alice)


async def test_step5_disabled_by_flag_or_by_configured_id_or_name(
    pilot: Pilot, alice: User
) -> None:
    for block in (DisabledFlagBlock, ConfigDisabledByIdBlock, ConfigDisabledByNameBlock):
        # Unknown fields too: step 5 comes before step 7.
        data = await run_block(pilot, alice.id, block.id, {"text": "x", "bogus": 1})
        assert_error(data, f"Block '{block.id}' is disabled", "block_disabled")
    await assert_nothing_ran(pilot, alice)


async def test_step6_excluded_by_type_or_id(pilot: Pilot, alice: User) -> None:
    assert OrchestratorLikeBlock.id == ORCHESTRATOR_ID
    excluded: tuple[type[Block], ...] = (
        GraphInputBlock,
        GraphOutputBlock,
        StickyNoteBlock,
        HookTriggerBlock,
        HumanReviewBlock,
        OrchestratorLikeBlock,
    )
    for block in excluded:
        data = await run_block(pilot, alice.id, block.id, {"value": "x", "bogus": 1})
        assert_error(
            data,
            f"Block '{block.__name__}' cannot be run directly in CoPilot. "
            "This block is designed for use within graphs only.",
            "block_excluded",
        )
    await assert_nothing_ran(pilot, alice)


# --------------------------------------------------------------------------- step 7


async def test_step7_unknown_fields_are_rejected_sorted_with_schema(
    pilot: Pilot, alice: User
) -> None:
    data = await run_block(
        pilot, alice.id, EchoTextBlock.id, {"text": "x", "zeta": 1, "Text": "y", "alpha": 2}
    )
    assert data["type"] == "input_validation_error"
    assert data["unrecognized_fields"] == ["Text", "alpha", "zeta"]
    assert data["message"] == (
        "Unknown input field(s) provided: Text, alpha, zeta. Block was not executed. "
        "Please use the correct field names from the schema."
    )
    assert data["inputs"]["properties"].keys() == {"text", "times", "tag"}
    assert data["code"] == "unknown_fields"
    await assert_nothing_ran(pilot, alice)


async def test_step7_only_unknown_key_and_required_missing_is_still_unknown_fields(
    pilot: Pilot, alice: User
) -> None:
    # "txet" is a typo of the required "text": the unknown-field check precedes the details step.
    data = await run_block(pilot, alice.id, EchoTextBlock.id, {"txet": "hello"})
    assert data["type"] == "input_validation_error"
    assert data["unrecognized_fields"] == ["txet"]


async def test_step7_precedes_missing_credentials(pilot: Pilot, alice: User) -> None:
    data = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "x", "LLM_Model": "gpt"})
    assert data["type"] == "input_validation_error"
    assert data["unrecognized_fields"] == ["LLM_Model"]


# --------------------------------------------------------------------------- step 8


async def test_step8_missing_credentials_exact_setup_requirements(
    pilot: Pilot, alice: User
) -> None:
    data = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "hello"})
    entry = {
        "id": "credentials",
        "title": "Credentials",
        "provider": "openai",
        "provider_name": "OpenAI",
        "type": "api_key",
        "types": ["api_key"],
        "scopes": [],
    }
    assert data["type"] == "setup_requirements"
    assert data["message"].startswith(SETUP_MESSAGE)
    assert "wait" in data["message"]
    assert data["graph_id"] is None and data["graph_version"] is None
    info = data["setup_info"]
    assert info["agent_id"] == ApiKeyEchoBlock.id
    assert info["agent_name"] == "ApiKeyEchoBlock"
    assert info["user_readiness"] == {
        "has_all_credentials": False,
        "missing_credentials": {"credentials": entry},
        "ready_to_run": False,
    }
    assert info["requirements"]["credentials"] == [entry]
    assert info["requirements"]["execution_modes"] == ["immediate"]
    assert info["requirements"]["inputs"] == [
        {"name": "prompt", "title": "Prompt", "type": "string", "description": "What to send",
         "required": True, "default": None},
        {"name": "mode", "title": "Mode", "type": "string",
         "description": "How the fake provider behaves", "required": False, "default": "ok"},
    ]  # fmt: skip
    await assert_nothing_ran(pilot, alice)


async def test_step8_setup_requirements_also_for_empty_input(pilot: Pilot, alice: User) -> None:
    data = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {})
    assert data["type"] == "setup_requirements"


async def test_step8_no_setup_url_where_no_service_serves_the_page(
    pilot: Pilot, alice: User
) -> None:
    data = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "x"})
    entry = data["setup_info"]["requirements"]["credentials"][0]
    assert pilot.settings.public_url is None and "setup_url" not in entry


async def test_step8_public_url_adds_a_signed_setup_url(pilot: Pilot, alice: User) -> None:
    # A second Pilot on the same database, whose settings say where the pages are served.
    served = pilot.settings.model_copy(update={"public_url": "https://pilot.example/"})
    async with await Pilot.open(served, registry=pilot.registry) as other:
        data = await run_block(other, alice.id, ApiKeyEchoBlock.id, {"prompt": "x"})
        entry = data["setup_info"]["requirements"]["credentials"][0]
        assert entry["setup_url"].startswith("https://pilot.example/setup/")
        grant = other.setup_links.verify(entry["setup_url"].rsplit("/", 1)[1])
    assert (grant.user_id, grant.block_id, grant.provider) == (
        alice.id,
        ApiKeyEchoBlock.id,
        "openai",
    )


# --------------------------------------------------------------------------- step 9


async def test_step9_empty_input_returns_block_details(pilot: Pilot, alice: User) -> None:
    data = await run_block(pilot, alice.id, EchoTextBlock.id, {})
    assert data["type"] == "block_details"
    assert data["message"] == (
        "Block 'EchoTextBlock' details. "
        "Provide input_data matching the inputs schema to execute the block."
    )
    assert data["user_authenticated"] is True
    block = data["block"]
    assert block["id"] == EchoTextBlock.id
    assert block["name"] == "EchoTextBlock"
    assert block["description"] == EchoTextBlock.description
    assert block["inputs"]["properties"].keys() == {"text", "times", "tag"}
    assert block["inputs"]["required"] == ["text"]
    assert {"out", "tag", "error"} <= block["outputs"]["properties"].keys()
    assert block["credentials"] == []
    await assert_nothing_ran(pilot, alice)


async def test_step9_only_optional_inputs_is_block_details(pilot: Pilot, alice: User) -> None:
    data = await run_block(pilot, alice.id, EchoTextBlock.id, {"times": 2})
    assert data["type"] == "block_details"
    assert CALLS == []


async def test_step9_precedes_value_validation(pilot: Pilot, alice: User) -> None:
    # The required "text" is missing and "times" is out of range: details first.
    data = await run_block(pilot, alice.id, EchoTextBlock.id, {"times": 99})
    assert data["type"] == "block_details"


async def test_step9_details_list_matched_credentials(pilot: Pilot, alice: User) -> None:
    cred_id = await add_api_key(pilot, alice.id, title="Work key")
    data = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {})
    assert data["type"] == "block_details"
    assert data["block"]["credentials"] == [
        {"id": cred_id, "provider": "openai", "type": "api_key", "title": "Work key"}
    ]
    assert "sk-test" not in json.dumps(data)


async def test_step9_credentials_field_alone_is_no_input(pilot: Pilot, alice: User) -> None:
    cred_id = await add_api_key(pilot, alice.id)
    cred = {"id": cred_id, "provider": "openai", "type": "api_key"}
    data = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"credentials": cred})
    assert data["type"] == "block_details"
    assert [c["id"] for c in data["block"]["credentials"]] == [cred_id]
    await assert_nothing_ran(pilot, alice)


# --------------------------------------------------------------------------- step 10


async def test_step10_invalid_values_are_per_field_errors(pilot: Pilot, alice: User) -> None:
    data = await run_block(pilot, alice.id, EchoTextBlock.id, {"text": 5, "times": 99})
    assert data["type"] == "input_validation_error"
    assert data["code"] == "invalid_input"
    assert set(data["errors"]) == {"text", "times"}
    assert any("string" in m for m in data["errors"]["text"])
    assert any("5" in m for m in data["errors"]["times"])  # "less than or equal to 5"
    assert data["unrecognized_fields"] == []
    assert data["inputs"]["properties"].keys() == {"text", "times", "tag"}
    assert "Block was not executed" in data["message"]
    await assert_nothing_ran(pilot, alice)


async def test_step10_invalid_enum_value(pilot: Pilot, alice: User) -> None:
    data = await run_block(pilot, alice.id, FailingBlock.id, {"mode": "explode"})
    assert data["type"] == "input_validation_error"
    assert list(data["errors"]) == ["mode"]
    assert CALLS == []


async def test_step10_errors_do_not_echo_input_values(pilot: Pilot, alice: User) -> None:
    data = await run_block(
        pilot, alice.id, EchoTextBlock.id, {"text": "x", "times": "sk-not-a-number-123456"}
    )
    assert data["type"] == "input_validation_error"
    assert "sk-not-a-number-123456" not in json.dumps(data)


# --------------------------------------------------------------------------- step 11


async def test_dry_run_validates_but_does_not_execute(pilot: Pilot, alice: User) -> None:
    data = await run_block(pilot, alice.id, EchoTextBlock.id, {"text": "hi"}, dry_run=True)
    assert data["type"] == "block_output"
    assert data["is_dry_run"] is True
    assert data["outputs"] == {}
    assert data["success"] is True
    assert CALLS == []
    record = await pilot.executions.get(alice.id, data["execution_id"])
    assert record is not None and record.is_dry_run and record.status == "completed"


async def test_dry_run_still_reports_invalid_input(pilot: Pilot, alice: User) -> None:
    data = await run_block(
        pilot, alice.id, EchoTextBlock.id, {"text": "hi", "times": 0}, dry_run=True
    )
    assert data["type"] == "input_validation_error"


async def test_success_collects_every_value_of_every_pin(pilot: Pilot, alice: User) -> None:
    data = await run_block(
        pilot, alice.id, EchoTextBlock.id, {"text": "héllo ☃ 𝄞 你好", "times": 3, "tag": "t"}
    )
    assert data["type"] == "block_output"
    assert data["message"] == "Block 'EchoTextBlock' executed successfully"
    assert data["block_id"] == EchoTextBlock.id
    assert data["block_name"] == "EchoTextBlock"
    assert data["outputs"] == {"out": ["héllo ☃ 𝄞 你好"] * 3, "tag": ["t"]}
    assert data["success"] is True
    assert data["is_dry_run"] is False
    assert data["output_truncated"] is False
    assert data["execution_id"]
    record = await pilot.executions.get(alice.id, data["execution_id"])
    assert record is not None and record.status == "completed"
    assert record.input_redacted == {"text": "héllo ☃ 𝄞 你好", "times": 3, "tag": "t"}


async def test_block_receives_synthetic_ids_context_and_legacy_kwargs(
    pilot: Pilot, alice: User
) -> None:
    data = await run_block(pilot, alice.id, EchoTextBlock.id, {"text": "hi"})
    sid = data["session_id"]
    (run,) = calls_of("EchoTextBlock")
    kwargs = run["kwargs"]
    ctx = kwargs["execution_context"]
    assert isinstance(ctx, ExecutionContext)
    graph = f"copilot-session-{sid}"
    assert ctx.user_id == alice.id
    assert ctx.graph_id == ctx.graph_exec_id == graph
    assert ctx.node_id == f"copilot-node-{EchoTextBlock.id}"
    assert re.fullmatch(rf"copilot-{re.escape(sid)}-[0-9a-f]{{16}}", ctx.node_exec_id or "")
    assert ctx.graph_version == 1
    assert ctx.session_id == sid
    workspace = await pilot.workspaces.get_or_create_workspace(alice.id)
    assert ctx.workspace_id == workspace.id
    assert ctx.dry_run is False
    # Legacy flat ids mirror the context.
    assert kwargs["user_id"] == alice.id
    assert kwargs["workspace_id"] == workspace.id
    assert kwargs["graph_id"] == kwargs["graph_exec_id"] == graph
    assert kwargs["node_id"] == ctx.node_id
    assert kwargs["node_exec_id"] == ctx.node_exec_id == data["execution_id"]
    assert kwargs["graph_version"] == 1
    # The workspace API is attached and usable.
    written = await ctx.files.write("/notes/a.txt", "x")
    assert written.workspace_id == workspace.id


async def test_each_run_gets_a_new_node_exec_id_but_the_same_graph_ids(
    pilot: Pilot, alice: User
) -> None:
    first = await run_block(pilot, alice.id, EchoTextBlock.id, {"text": "a"})
    second = await run_block(
        pilot, alice.id, EchoTextBlock.id, {"text": "b"}, session_id=first["session_id"]
    )
    assert first["execution_id"] != second["execution_id"]
    a, b = (c["kwargs"]["execution_context"] for c in CALLS)
    assert a.graph_exec_id == b.graph_exec_id


async def test_error_pin_is_block_failed(
    pilot: Pilot, alice: User, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        data = await run_block(
            pilot, alice.id, FailingBlock.id, {"mode": "error_pin", "reason": "quota exceeded"}
        )
    assert_error(data, "Block execution failed: quota exceeded", "block_failed")
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and r.name == "blockpilot.runner"
    ]
    assert warnings, "a block failure is logged as a warning"
    record = (await pilot.executions.list(alice.id))[0]
    assert record.status == "failed"
    assert record.error_message == "quota exceeded"


@pytest.mark.parametrize("mode", ["block_error", "value_error"])
async def test_block_error_is_block_failed_without_traceback(
    pilot: Pilot, alice: User, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    with caplog.at_level(logging.WARNING):
        data = await run_block(
            pilot, alice.id, FailingBlock.id, {"mode": mode, "reason": "bad repo name"}
        )
    assert_error(data, "Block execution failed: bad repo name", "block_failed")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_blockpilot_error_from_a_block_is_block_failed_with_its_cause(
    pilot: Pilot, alice: User
) -> None:
    data = await run_block(
        pilot, alice.id, FailingBlock.id, {"mode": "network", "reason": "10.0.0.1 is private"}
    )
    assert_error(data, "Block execution failed: 10.0.0.1 is private", "block_failed")
    assert data["details"] == {"cause": "destination_blocked"}


async def test_unknown_output_pin_is_an_invalid_output_failure(pilot: Pilot, alice: User) -> None:
    data = await run_block(pilot, alice.id, FailingBlock.id, {"mode": "bad_pin"})
    assert data["type"] == "error"
    assert data["code"] == "invalid_output"
    assert (
        data["message"]
        == "Block execution failed: FailingBlock produced an unknown output 'reslut'"
    )


async def test_unexpected_exception_is_internal_error_logged_with_traceback(
    pilot: Pilot, alice: User, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        data = await run_block(
            pilot, alice.id, FailingBlock.id, {"mode": "crash", "reason": "null pointer"}
        )
    assert_error(data, "Failed to execute block: RuntimeError: null pointer", "internal_error")
    errors = [
        r for r in caplog.records if r.levelno == logging.ERROR and r.name == "blockpilot.runner"
    ]
    assert errors
    assert "Traceback" in caplog.text and "null pointer" in caplog.text
    record = (await pilot.executions.list(alice.id))[0]
    assert record.status == "failed" and record.error_code == "internal_error"


async def test_block_timeout(pilot: Pilot, alice: User) -> None:
    data = await run_block(pilot, alice.id, SlowBlock.id, {"seconds": 5})
    assert data["type"] == "error"
    assert data["code"] == "block_timeout"
    assert data["message"] == "Block 'SlowBlock' timed out after 0.2s"
    (record,) = await pilot.executions.list(alice.id)
    assert record.status == "timed_out"
    assert record.error_code == "block_timeout"
    assert record.finished_at is not None


async def test_timeout_error_raised_by_the_block_is_not_reported_as_the_run_timeout(
    pilot: Pilot, alice: User
) -> None:
    # Regression: a TimeoutError from inside the block (a socket timeout, say) was reported
    # as "timed out after 120s" with status timed_out, although the run took milliseconds.
    data = await run_block(
        pilot, alice.id, FailingBlock.id, {"mode": "own_timeout", "reason": "read timed out"}
    )
    assert data["code"] == "internal_error"
    assert data["message"] == "Failed to execute block: TimeoutError: read timed out"
    (record,) = await pilot.executions.list(alice.id)
    assert record.status == "failed"


async def test_configured_block_timeout_applies_when_the_block_sets_none(
    pilot_factory: Any, alice: User
) -> None:
    p = await pilot_factory(block_timeout_seconds=0.1)
    data = await run_block(p, alice.id, EchoTextBlock.id, {"text": "fast"})
    assert data["type"] == "block_output"
    # SlowBlock's own 0.2 s wins over the default for blocks that set one.
    data = await run_block(p, alice.id, SlowBlock.id, {"seconds": 5})
    assert data["message"] == "Block 'SlowBlock' timed out after 0.2s"


@pytest.mark.workspace_backends  # the saved output resolves on every backend
async def test_output_too_large_is_truncated_and_saved_in_full(
    pilot_factory: Any, alice: User
) -> None:
    p = await pilot_factory(max_output_chars=1000)
    data = await run_block(p, alice.id, BigOutputBlock.id, {"size": 5000})
    assert data["type"] == "block_output"
    assert data["output_truncated"] is True
    (value,) = data["outputs"]["data"]
    assert "[truncated: 5000 characters in total" in value
    assert len(json.dumps(data["outputs"], ensure_ascii=False)) <= 1000
    match = re.search(r"workspace://([0-9a-f-]{36})", value)
    assert match, value
    workspace = await p.workspaces.get_or_create_workspace(alice.id)
    files = p.workspaces.for_workspace(workspace)
    info, content = await files.read_by_id(match.group(1))
    assert content.decode() == calls_expected_text(5000)
    assert info.size_bytes == 5000


@pytest.mark.workspace_backends  # the saved output resolves on every backend
async def test_many_small_values_still_fit_the_output_limit(
    pilot_factory: Any, alice: User
) -> None:
    p = await pilot_factory(max_output_chars=1000)
    data = await run_block(p, alice.id, BigOutputBlock.id, {"size": 20, "count": 200})
    assert data["type"] == "block_output"
    assert data["output_truncated"] is True
    assert len(json.dumps(data["outputs"], ensure_ascii=False)) <= 1000
    *shown, note = data["outputs"]["data"]
    # The leading values are kept as they were; one marker names the file with the whole list.
    assert shown and shown == [calls_expected_text(20, i) for i in range(len(shown))]
    assert f"[truncated: 200 values in total, {len(shown)} shown" in note
    match = re.search(r"workspace://([0-9a-f-]{36})", note)
    assert match, note
    workspace = await p.workspaces.get_or_create_workspace(alice.id)
    _, content = await p.workspaces.for_workspace(workspace).read_by_id(match.group(1))
    assert json.loads(content) == [calls_expected_text(20, i) for i in range(200)]
    # The record counts every value produced, not the ones shown.
    record = await p.executions.get(alice.id, data["execution_id"])
    assert record is not None and record.output_summary == {
        "pins": {"data": 200},
        "truncated": True,
    }
    # Not one file per small value.
    assert len(await p.workspaces.for_workspace(workspace).list("/.blockpilot/outputs")) == 1


def calls_expected_text(size: int, i: int = 0) -> str:
    return "".join(chr(ord("a") + (j + i) % 26) for j in range(size))


async def test_output_within_limit_is_untouched(pilot_factory: Any, alice: User) -> None:
    p = await pilot_factory(max_output_chars=1000)
    data = await run_block(p, alice.id, BigOutputBlock.id, {"size": 500})
    assert data["output_truncated"] is False
    assert data["outputs"]["data"] == [calls_expected_text(500)]


async def test_huge_input_is_a_clean_error_and_writes_no_record(
    pilot_factory: Any, alice: User
) -> None:
    p = await pilot_factory(max_input_bytes=2048)
    data = await run_block(p, alice.id, EchoTextBlock.id, {"text": "x" * 5000})
    assert data["type"] == "error"
    assert data["code"] == "invalid_input_data"
    assert "2048 bytes" in data["message"]
    assert await p.executions.list(alice.id) == []
    assert CALLS == []


async def test_deeply_nested_input_is_a_clean_error(pilot: Pilot, alice: User) -> None:
    nested: Any = "leaf"
    for _ in range(10_000):
        nested = {"a": nested}
    data = await run_block(pilot, alice.id, EchoTextBlock.id, {"text": "x", "tag": nested})
    assert data["type"] == "error"
    assert data["code"] == "invalid_input_data"
    assert "nested deeper" in data["message"]
    nested_list: Any = []
    for _ in range(10_000):
        nested_list = [nested_list]
    data = await run_block(pilot, alice.id, EchoTextBlock.id, {"text": nested_list})
    assert data["code"] == "invalid_input_data"
    assert await pilot.executions.list(alice.id) == []
    assert CALLS == []


async def test_unicode_field_values_and_unknown_unicode_keys(pilot: Pilot, alice: User) -> None:
    data = await run_block(pilot, alice.id, EchoTextBlock.id, {"text": "\u0000nul 🚀 \u202eRTL"})
    assert data["outputs"]["out"] == ["\u0000nul 🚀 \u202eRTL"]
    data = await run_block(pilot, alice.id, EchoTextBlock.id, {"text": "x", "tëxt": "y"})
    assert data["unrecognized_fields"] == ["tëxt"]
