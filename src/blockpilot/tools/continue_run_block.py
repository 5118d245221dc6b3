"""continue_run_block: run a call the user approved, by its review id (docs/approvals.md)."""

from __future__ import annotations

from typing import Any

from blockpilot.runner import BlockRunner
from blockpilot.tools.base import BaseTool, ToolCall, ToolHints
from blockpilot.tools.outcomes import tool_response
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
        self._longest: tuple[int, float] | None = None  # (registry generation, seconds)

    def time_limit(self, arguments: dict[str, Any]) -> float:
        # Which block runs is only known once the review is read: allow the longest block
        # timeout, so that the block's own limit fires first (as for run_block).
        registry = self._runner.catalog.registry
        if self._longest is None or self._longest[0] != registry.generation:
            # Once per catalogue change, not per call: sources can bring thousands of blocks.
            longest = max((b.timeout_seconds or 0.0 for b in registry.all()), default=0.0)
            self._longest = (registry.generation, longest)
        return max(self._longest[1], self._runner.time_limit(None)) + self.timeout_seconds

    def hints(self) -> ToolHints:
        return ToolHints(read_only=False, destructive=True, open_world=True)

    async def run(self, call: ToolCall, **arguments: Any) -> ToolResponseBase:
        user_id, session_id = call.signed_in()
        outcome = await self._runner.continue_review(
            user_id=user_id,
            session_id=session_id,
            review_id=arguments.get("review_id"),
            api_key_id=call.api_key_id,
        )
        return tool_response(outcome, call.session_id)
