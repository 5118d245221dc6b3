"""blockpilot's tools as OpenAI Agents SDK function tools (``blockpilot[openai-agents]``).

``Agent(name=..., tools=openai_agents_tools(pilot, user_id=...))``. The schemas are the
``openai-strict`` ones every strict client gets (``docs/tools.md``); the model's arguments are
turned back with :func:`blockpilot.tools.schemas.restore_arguments` (``docs/frameworks.md``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from agents import FunctionTool
from agents.tool_context import ToolContext

from blockpilot.integrations.binding import UserToolBinding
from blockpilot.tools.responses import ErrorResponse
from blockpilot.tools.schemas import export_tool

if TYPE_CHECKING:
    from blockpilot.pilot import Pilot


def openai_agents_tools(
    pilot: Pilot, *, user_id: str, session_id: str | None = None
) -> list[FunctionTool]:
    """*pilot*'s tools for *user_id*'s agent, sharing one chat session.

    Args:
        pilot: An open Pilot.
        user_id: The signed-in user the tools act for (never taken from the model).
        session_id: A chat session of this user to continue; None starts one on first use.
    """
    binding = UserToolBinding(pilot, user_id=user_id, session_id=session_id)
    return [
        _function_tool(binding, export_tool(tool, "openai-strict")) for tool in pilot.tools.values()
    ]


def _function_tool(binding: UserToolBinding, definition: dict[str, Any]) -> FunctionTool:
    function = definition["function"]
    name: str = function["name"]

    async def invoke(ctx: ToolContext[Any], raw_arguments: str) -> str:
        try:
            arguments = json.loads(raw_arguments) if raw_arguments else {}
        except ValueError:
            return ErrorResponse(
                message=f"The arguments of {name} are not valid JSON; send a JSON object",
                error="invalid_arguments",
                code="invalid_arguments",
                session_id=binding.session_id,
            ).to_json()
        return await binding.call_json(name, arguments, strict=True)

    return FunctionTool(
        name=name,
        description=function["description"],
        params_json_schema=function["parameters"],
        on_invoke_tool=invoke,
        strict_json_schema=True,
    )


__all__ = ["openai_agents_tools"]
