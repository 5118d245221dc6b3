"""blockpilot's tools as LangChain tools (``pip install 'blockpilot[langchain]'``).

``langchain_tools(pilot, user_id=...)`` gives one :class:`BlockpilotTool` per blockpilot tool,
with the same description and JSON Schema every other door shows; they work with
``langchain.agents.create_agent`` and LangGraph's prebuilt agents (``docs/frameworks.md``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import TYPE_CHECKING, Any

from langchain_core.tools import BaseTool
from pydantic import ConfigDict, SkipValidation

from blockpilot.integrations.binding import UserToolBinding
from blockpilot.tools.responses import ErrorResponse
from blockpilot.tools.schemas import export_tool

if TYPE_CHECKING:
    from blockpilot.pilot import Pilot


class BlockpilotTool(BaseTool):
    """One blockpilot tool for one user's agent; the result is the tool's JSON response."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    binding: SkipValidation[UserToolBinding]
    loop: SkipValidation[asyncio.AbstractEventLoop | None] = None
    """The event loop the Pilot runs on, for sync calls made from another thread."""

    async def _arun(self, **arguments: Any) -> str:
        return await self.binding.call_json(self.name, arguments)

    def _run(self, **arguments: Any) -> str:
        # The Pilot's database connections belong to its event loop: a sync call runs the
        # tool there and waits (LangChain calls sync tools from worker threads).
        loop = self.loop
        if loop is None or not loop.is_running():
            return _sync_unavailable(self.name)
        try:
            if asyncio.get_running_loop() is loop:
                return _sync_unavailable(self.name)
        except RuntimeError:
            pass  # no loop in this thread: the usual case for a sync call
        future = asyncio.run_coroutine_threadsafe(self._arun(**arguments), loop)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            return _sync_unavailable(self.name)


def _sync_unavailable(name: str) -> str:
    return ErrorResponse(
        message=(
            f"{name} was called synchronously where it cannot wait for the Pilot's event loop; "
            "call the agent with ainvoke (docs/frameworks.md)"
        ),
        error="sync_call_unavailable",
        code="sync_call_unavailable",
    ).to_json()


def langchain_tools(
    pilot: Pilot, *, user_id: str, session_id: str | None = None
) -> list[BlockpilotTool]:
    """*pilot*'s tools for *user_id*'s LangChain agent, sharing one chat session.

    Args:
        pilot: An open Pilot.
        user_id: The signed-in user the tools act for (never taken from the model).
        session_id: A chat session of this user to continue; None starts one on first use.
    """
    binding = UserToolBinding(pilot, user_id=user_id, session_id=session_id)
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    tools = []
    for tool in pilot.tools.values():
        function = export_tool(tool, "openai")["function"]
        tools.append(
            BlockpilotTool(
                name=function["name"],
                description=function["description"],
                args_schema=function["parameters"],
                binding=binding,
                loop=loop,
            )
        )
    return tools


__all__ = ["BlockpilotTool", "langchain_tools"]
