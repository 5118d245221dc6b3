"""blockpilot's tools as a Pydantic AI toolset (``pip install 'blockpilot[pydantic-ai]'``).

``Agent(model, toolsets=[BlockpilotToolset(pilot, user_id=...)])``. The user is fixed when
the toolset is made, or read from the run's dependencies by a function of the run context
(``user_id=lambda ctx: ctx.deps.user_id``), which the application sets, never the model. Each
agent run gets its own chat session (``docs/frameworks.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic_ai import RunContext
from pydantic_ai.tools import ToolDefinition
from pydantic_ai.toolsets import AbstractToolset
from pydantic_ai.toolsets.abstract import ToolsetTool
from pydantic_core import SchemaValidator, core_schema

from blockpilot.integrations.binding import UserToolBinding
from blockpilot.tools.schemas import export_tool

if TYPE_CHECKING:
    from blockpilot.pilot import Pilot

UserIdSource = str | Callable[[RunContext[Any]], str]
"""A user id, or a function of the run context that gives it (from ``ctx.deps``)."""

# The model's arguments go to the tool as they are; the tool validates them and answers a
# typed error the model can act on (the same as over every other door).
_ANY_ARGUMENTS = SchemaValidator(schema=core_schema.dict_schema())


class BlockpilotToolset(AbstractToolset[Any]):
    """*pilot*'s tools (``find_block``, ``run_block``, …) for one user's agent runs."""

    def __init__(
        self,
        pilot: Pilot,
        *,
        user_id: UserIdSource,
        session_id: str | None = None,
        id: str | None = None,  # noqa: A002 - the name Pydantic AI's toolsets use
        _binding: UserToolBinding | None = None,
    ) -> None:
        self.pilot = pilot
        self.user_id = user_id
        self.session_id = session_id
        self._id = id
        self._binding = _binding

    @property
    def id(self) -> str | None:
        return self._id

    async def for_run(self, ctx: RunContext[Any]) -> BlockpilotToolset:
        """A copy bound to this run's user and a chat session of its own."""
        user_id = self.user_id(ctx) if callable(self.user_id) else self.user_id
        binding = UserToolBinding(self.pilot, user_id=user_id, session_id=self.session_id)
        return BlockpilotToolset(
            self.pilot, user_id=user_id, session_id=self.session_id, id=self._id, _binding=binding
        )

    async def get_tools(self, ctx: RunContext[Any]) -> dict[str, ToolsetTool[Any]]:
        tools: dict[str, ToolsetTool[Any]] = {}
        for tool in self.pilot.tools.values():
            function = export_tool(tool, "openai")["function"]
            tools[tool.name] = ToolsetTool(
                toolset=self,
                tool_def=ToolDefinition(
                    name=function["name"],
                    description=function["description"],
                    parameters_json_schema=function["parameters"],
                ),
                max_retries=1,
                args_validator=_ANY_ARGUMENTS,
            )
        return tools

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
    ) -> str:
        binding = self._binding
        if binding is None:  # called outside an agent run: bind this call only, never self
            binding = (await self.for_run(ctx))._binding
            assert binding is not None  # for_run always binds
        return await binding.call_json(name, tool_args)


__all__ = ["BlockpilotToolset", "UserIdSource"]
