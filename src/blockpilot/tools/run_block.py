"""run_block: run one block for the signed-in user (docs/tools.md#run_block)."""

from __future__ import annotations

from typing import Any

from blockpilot.blocks.base import BlockEffect
from blockpilot.runner import BlockRunner
from blockpilot.tools.base import BaseTool, ToolCall, ToolHints
from blockpilot.tools.outcomes import tool_response
from blockpilot.tools.responses import ErrorResponse, ToolResponseBase


class RunBlockTool(BaseTool):
    title = "Run block"
    name = "run_block"
    description = (
        "Run a block found with find_block, for the signed-in user with their own connected "
        "accounts. Call it first with input_data {} to see the block's inputs; then call it with "
        "the inputs. If an account must be connected, the response says so: tell the user and wait."
    )
    parameters = {
        "type": "object",
        "properties": {
            "block_id": {
                "type": "string",
                "description": "The block's 'id' from find_block results. Never guess it.",
            },
            "input_data": {
                "type": "object",
                "description": (
                    "Inputs of the block, by field name. Use {} to see the block's schema."
                ),
            },
            "dry_run": {
                "type": "boolean",
                "description": "Validate inputs and credentials without running the block",
                "default": False,
            },
            "idempotency_key": {
                "type": "string",
                "description": (
                    "Optional. A unique key for this action (e.g. a UUID): repeating the call "
                    "with the same key returns the first result instead of acting twice."
                ),
            },
        },
        "required": ["block_id", "input_data"],
    }

    def __init__(self, runner: BlockRunner, timeout_seconds: float = 120.0) -> None:
        super().__init__(timeout_seconds)
        self._runner = runner

    def time_limit(self, arguments: dict[str, Any]) -> float:
        # The runner owns a run's time limit: the block timeout, which the caller and the
        # execution record see (block_timeout / timed_out). The tool's own limit only bounds
        # the work around the block, added on top so it never pre-empts it (docs/tools.md).
        return self._runner.time_limit(arguments.get("block_id")) + self.timeout_seconds

    def hints(self) -> ToolHints:
        """From the effects of the blocks it can run: destructive if any of them is, read-only
        only if all of them only read (``docs/mcp.md``)."""
        catalog = self._runner.catalog
        effects = {b.effect for b in catalog.registry.all() if catalog.usable(b)}
        read_only = bool(effects) and effects == {BlockEffect.READ}
        return ToolHints(
            read_only=read_only, destructive=BlockEffect.DESTRUCTIVE in effects, open_world=True
        )

    async def run(self, call: ToolCall, **arguments: Any) -> ToolResponseBase:
        dry_run = arguments.get("dry_run")
        dry_run = False if dry_run is None else dry_run  # null means the default
        if not isinstance(dry_run, bool):
            return ErrorResponse(
                message="dry_run must be true or false",
                error="invalid_arguments",
                code="invalid_arguments",
                session_id=call.session_id,
            )
        key = arguments.get("idempotency_key")
        if key is not None and (not isinstance(key, str) or not 1 <= len(key.strip()) <= 200):
            return ErrorResponse(
                message="idempotency_key must be a string of 1 to 200 characters",
                error="invalid_arguments",
                code="invalid_arguments",
                session_id=call.session_id,
            )
        user_id, session_id = call.signed_in()
        outcome = await self._runner.run(
            user_id=user_id,
            session_id=session_id,
            block_id=arguments.get("block_id"),
            input_data=arguments.get("input_data"),
            dry_run=dry_run,
            idempotency_key=key.strip() if key is not None else None,
            api_key_id=call.api_key_id,
        )
        return tool_response(outcome, call.session_id)
