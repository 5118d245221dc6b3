"""continue_run_block: run a call the user approved, by its review id (docs/approvals.md)."""

from __future__ import annotations

from typing import Any

from blockpilot.runner import BlockRunner
from blockpilot.tools.base import BaseTool, ToolCall
from blockpilot.tools.responses import ToolResponseBase


class ContinueRunBlockTool(BaseTool):
    title = "Continue an approved block run"
    name = "continue_run_block"
    description = (
        "Run a block call that needed the user's approval, once they approved it: pass the "
        "review_id from run_block's review_required answer. It runs exactly the inputs the "
        "user saw, once; if they rejected it, the answer gives their reason."
    )
    parameters = {
        "type": "object",
        "properties": {
            "review_id": {
                "type": "string",
                "description": "The review_id from run_block's review_required response.",
            },
        },
        "required": ["review_id"],
    }

    def __init__(self, runner: BlockRunner, timeout_seconds: float = 120.0) -> None:
        super().__init__(timeout_seconds)
        self._runner = runner

    async def _execute(self, call: ToolCall, **arguments: Any) -> ToolResponseBase:
        return await self._runner.continue_review(
            user_id=call.user_id, session_id=call.session_id, review_id=arguments.get("review_id")
        )
