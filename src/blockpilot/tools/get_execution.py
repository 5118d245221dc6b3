"""get_execution: did one of my runs happen, and what came out? (read-only; docs/tools.md)"""

from __future__ import annotations

from typing import Any

from blockpilot.runner import BlockRunner
from blockpilot.tools.base import BaseTool, ToolCall, ToolHints
from blockpilot.tools.outcomes import tool_response
from blockpilot.tools.responses import ToolResponseBase


class GetExecutionTool(BaseTool):
    title = "Get an execution"
    name = "get_execution"
    description = (
        "Look up one of the user's block runs by its execution_id (from run_block answers): "
        "whether it completed, failed or was interrupted, and its outputs when they were kept "
        "(calls made with an idempotency_key). Read-only: it never runs anything."
    )
    parameters = {
        "type": "object",
        "properties": {
            "execution_id": {
                "type": "string",
                "description": "The execution_id from a run_block response.",
            },
        },
        "required": ["execution_id"],
    }

    def __init__(self, runner: BlockRunner, timeout_seconds: float = 120.0) -> None:
        super().__init__(timeout_seconds)
        self._runner = runner

    def hints(self) -> ToolHints:
        return ToolHints(read_only=True, destructive=False, idempotent=True, open_world=False)

    async def run(self, call: ToolCall, **arguments: Any) -> ToolResponseBase:
        user_id, _ = call.signed_in()
        outcome = await self._runner.execution_status(
            user_id=user_id, execution_id=arguments.get("execution_id")
        )
        return tool_response(outcome, call.session_id)
