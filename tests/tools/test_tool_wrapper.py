"""What every tool call goes through in ``Pilot.run_call`` (docs/tools.md): sign-in, argument
shape, timeout, catch-all."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

import pytest

from blockpilot.pilot import Pilot, PreparedCall
from blockpilot.storage.users import User
from blockpilot.tools.base import DEFAULT_TOOL_TIMEOUT, BaseTool, ToolCall
from blockpilot.tools.responses import ErrorResponse, ToolResponseBase
from tests.tools.bp_helpers import call, run_block
from tests.tools.bp_test_blocks import CALLS, EchoTextBlock, SlowBlock


class CountingTool(BaseTool):
    name = "counting"
    description = "Counts its calls."
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "query": {"type": "string"},
            "pause": {"type": "number"},
            "fail": {"type": "string"},
        },
        "required": ["query"],
    }

    def __init__(self, timeout_seconds: float = DEFAULT_TOOL_TIMEOUT) -> None:
        super().__init__(timeout_seconds)
        self.calls: list[dict[str, Any]] = []

    async def run(self, call: ToolCall, **arguments: Any) -> ToolResponseBase:
        self.calls.append(arguments)
        if arguments.get("pause"):
            await asyncio.sleep(arguments["pause"])
        if arguments.get("fail"):
            raise RuntimeError(arguments["fail"])
        return ErrorResponse(message="body ran", error="ok", code="ok", session_id=call.session_id)


class PublicTool(CountingTool):
    name = "public"
    requires_auth = False


async def through_pilot(
    pilot: Pilot, tool: BaseTool, call: ToolCall, arguments: Any
) -> ToolResponseBase:
    """*tool* called the one way every door calls a tool: :meth:`Pilot.run_call`."""
    return await pilot.run_call(PreparedCall(tool, call), arguments)


def test_default_timeout_is_120_seconds() -> None:
    assert DEFAULT_TOOL_TIMEOUT == 120
    assert CountingTool().timeout_seconds == 120


async def test_need_login_without_user_and_the_body_does_not_run(pilot: Pilot) -> None:
    tool = CountingTool()
    for user in (None, ""):
        response = await through_pilot(
            pilot, tool, ToolCall(user_id=user, session_id="s-1"), {"query": "x"}
        )
        assert response.type == "need_login"
        assert response.message == "Please sign in to use counting"
        assert response.session_id == "s-1"
    assert tool.calls == []


async def test_need_login_comes_before_argument_checks(pilot: Pilot) -> None:
    tool = CountingTool()
    response = await through_pilot(
        pilot, tool, ToolCall(user_id=None, session_id=None), ["not", "an", "object"]
    )
    assert response.type == "need_login"
    assert tool.calls == []


async def test_tool_without_requires_auth_runs_without_a_user(pilot: Pilot) -> None:
    tool = PublicTool()
    response = await through_pilot(
        pilot, tool, ToolCall(user_id=None, session_id=None), {"query": "x"}
    )
    assert response.message == "body ran"
    assert tool.calls == [{"query": "x"}]


async def test_signed_in_user_runs_the_body(pilot: Pilot) -> None:
    tool = CountingTool()
    response = await through_pilot(
        pilot, tool, ToolCall(user_id="u-1", session_id="s-1"), {"query": "x"}
    )
    assert response.message == "body ran"
    assert response.session_id == "s-1"
    assert tool.calls == [{"query": "x"}]


async def test_run_block_without_user_is_need_login_and_the_block_never_runs(pilot: Pilot) -> None:
    data = await run_block(pilot, None, EchoTextBlock.id, {"text": "hi"})
    assert data["type"] == "need_login"
    assert data["message"] == "Please sign in to use run_block"
    assert CALLS == []
    data = await call(pilot, "find_block", {"query": "echo"}, user_id=None)
    assert data["type"] == "need_login"
    assert data["message"] == "Please sign in to use find_block"


async def test_timeout_is_an_error_with_the_tool_name_and_seconds(pilot: Pilot) -> None:
    tool = CountingTool(timeout_seconds=0.05)
    response = await through_pilot(
        pilot, tool, ToolCall(user_id="u", session_id="s"), {"query": "x", "pause": 5}
    )
    assert response.type == "error"
    assert response.message == "counting timed out after 0.05s"
    assert response.error == "timeout"  # type: ignore[attr-defined]
    assert response.session_id == "s"


async def test_timeout_error_raised_by_the_body_is_not_reported_as_the_tool_timeout(
    pilot: Pilot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Regression: a TimeoutError raised inside the body was reported as "timed out after 120s".
    class OwnTimeoutTool(CountingTool):
        name = "own_timeout"

        async def run(self, call: ToolCall, **arguments: Any) -> ToolResponseBase:
            raise TimeoutError("upstream took too long")

    with caplog.at_level(logging.ERROR):
        response = await through_pilot(
            pilot, OwnTimeoutTool(), ToolCall(user_id="u", session_id="s"), {"query": "x"}
        )
    assert response.message == "An error occurred while executing own_timeout"
    assert "upstream took too long" in caplog.text


async def test_the_tool_timeout_does_not_pre_empt_the_block_timeout(pilot_factory: Any) -> None:
    p = await pilot_factory(tool_timeout_seconds=0.1)
    # SlowBlock's own timeout (0.2 s) is longer than the tool's (0.1 s): the run still gets
    # its block's limit (the runner owns it; the tool's is added on top, docs/tools.md).
    # The timing itself is tested with wide margins in tests/reliability.
    assert p.tools["run_block"].time_limit({"block_id": SlowBlock.id}) == 0.2 + 0.1
    assert p.tools["find_block"].time_limit({"query": "x"}) == 0.1


async def test_unexpected_exception_is_generic_and_logged_with_traceback(
    pilot: Pilot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tool = CountingTool()
    with caplog.at_level(logging.ERROR):
        response = await through_pilot(
            pilot,
            tool,
            ToolCall(user_id="u", session_id="s"),
            {"query": "x", "fail": "internal-detail-4711"},
        )
    assert response.type == "error"
    assert response.message == "An error occurred while executing counting"
    assert "internal-detail-4711" not in response.to_json()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors, "the failure must be logged"
    assert "Traceback" in caplog.text and "internal-detail-4711" in caplog.text
    assert "RuntimeError" in caplog.text


@pytest.mark.parametrize(
    "arguments",
    [{"query": "x", "bogus": 1}, {"query": "x", "Query": "y"}, {"bogus": 1}],
)
async def test_unknown_arguments_are_rejected_by_name(
    pilot: Pilot, arguments: dict[str, Any]
) -> None:
    tool = CountingTool()
    response = await through_pilot(pilot, tool, ToolCall(user_id="u", session_id="s"), arguments)
    assert response.type == "error"
    assert response.code == "invalid_arguments"  # type: ignore[attr-defined]
    unknown = sorted(set(arguments) - {"query"})
    assert f"Unknown argument(s) for counting: {', '.join(unknown)}" in response.message
    assert tool.calls == []


async def test_unknown_argument_names_of_mixed_types_are_an_error_not_a_crash(
    pilot: Pilot,
) -> None:
    # Regression (library callers): {1: ..., "bogus": ...} raised TypeError while sorting.
    tool = CountingTool()
    arguments = {"query": "x", 1: "y", "bogus": 2}
    response = await through_pilot(pilot, tool, ToolCall(user_id="u", session_id="s"), arguments)
    assert response.code == "invalid_arguments"  # type: ignore[attr-defined]
    assert "Unknown argument(s) for counting: 1, bogus." in response.message
    assert tool.calls == []


async def test_every_door_reaches_a_tool_through_the_pilot(pilot: Pilot, alice: User) -> None:
    # call_tool (the library, CLI, chat and framework doors) resolves the tool and the session,
    # then goes through the same run_call as HTTP (prepare_call + run_call) and MCP.
    tool = CountingTool()
    pilot.tools[tool.name] = tool
    response = await pilot.call_tool("counting", {"query": "x"}, user_id=alice.id)
    assert response.message == "body ran" and response.session_id
    response = await pilot.call_tool("counting", {"query": "x"}, user_id=None)
    assert response.type == "need_login"
    assert tool.calls == [{"query": "x"}]


@pytest.mark.parametrize("arguments", [[], ["query"], "query", None, 3, True])
async def test_non_object_arguments_are_rejected(pilot: Pilot, arguments: Any) -> None:
    tool = CountingTool()
    response = await through_pilot(pilot, tool, ToolCall(user_id="u", session_id="s"), arguments)
    assert response.type == "error"
    assert response.code == "invalid_arguments"  # type: ignore[attr-defined]
    assert response.message == "Arguments of counting must be a JSON object"
    assert tool.calls == []


async def test_run_block_rejects_unknown_arguments_without_running(
    pilot: Pilot, alice: User
) -> None:
    data = await call(
        pilot,
        "run_block",
        {"block_id": EchoTextBlock.id, "input_data": {"text": "x"}, "block_name": "EchoTextBlock"},
        user_id=alice.id,
    )
    assert data["type"] == "error"
    assert data["code"] == "invalid_arguments"
    assert "block_name" in data["message"]
    assert CALLS == []


async def test_run_block_dry_run_must_be_boolean(pilot: Pilot, alice: User) -> None:
    for value in ("yes", 1, "false"):
        data = await run_block(pilot, alice.id, EchoTextBlock.id, {"text": "x"}, dry_run=value)
        assert data["type"] == "error"
        assert data["message"] == "dry_run must be true or false"
    assert CALLS == []


async def test_run_block_dry_run_null_means_the_default(pilot: Pilot, alice: User) -> None:
    # Regression: a null optional argument (as strict function calling sends) was an error.
    data = await run_block(pilot, alice.id, EchoTextBlock.id, {"text": "x"}, dry_run=None)
    assert data["type"] == "block_output" and data["is_dry_run"] is False
    assert len(CALLS) == 1


async def test_unknown_tool_name(pilot: Pilot, alice: User) -> None:
    data = await call(pilot, "delete_everything", {}, user_id=alice.id)
    assert data["type"] == "error"
    assert data["code"] == "tool_not_found"
    assert "find_block" in data["message"] and "run_block" in data["message"]
