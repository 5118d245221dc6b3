"""One user's tools in one chat session: what every framework adapter calls.

The user id is fixed when the binding is made (never read from the model's arguments), and
the chat session is created once, on the first call, then reused by every later call, so
workspace files and execution ids of one agent run line up (``docs/frameworks.md``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from blockpilot.errors import NotFoundError
from blockpilot.tools.responses import ErrorResponse, ToolResponseBase
from blockpilot.tools.schemas import restore_arguments

if TYPE_CHECKING:
    from blockpilot.pilot import Pilot


class UserToolBinding:
    """``pilot``'s tools as called by one user's agent, in one chat session."""

    def __init__(self, pilot: Pilot, *, user_id: str, session_id: str | None = None) -> None:
        if not isinstance(user_id, str) or not user_id:
            raise TypeError("user_id must be a non-empty string (the signed-in user)")
        self.pilot = pilot
        self.user_id = user_id
        self.session_id = session_id
        self._session_lock = asyncio.Lock()

    @property
    def tool_names(self) -> list[str]:
        return list(self.pilot.tools)

    def description(self, name: str) -> str:
        return self.pilot.tools[name].description

    async def call(self, name: str, arguments: Any, *, strict: bool = False) -> ToolResponseBase:
        """Run tool *name*; never raises for tool outcomes (errors are responses).

        With *strict*, the arguments are in the ``openai-strict`` dialect and are turned back
        into the tool's own shape first.
        """
        if strict and name in self.pilot.tools and isinstance(arguments, dict):
            arguments = restore_arguments(self.pilot.tools[name].parameters, arguments)
        try:
            session_id = await self._session()
        except NotFoundError as exc:
            return ErrorResponse(message=exc.message, error=exc.code, code=exc.code)
        response = await self.pilot.call_tool(
            name, arguments, user_id=self.user_id, session_id=session_id
        )
        return response

    async def call_json(self, name: str, arguments: Any, *, strict: bool = False) -> str:
        """:meth:`call`, as the JSON text the model reads (setup and approval links included:
        the model is the only way to show them to the person; ``docs/frameworks.md``)."""
        return (await self.call(name, arguments, strict=strict)).to_json()

    async def _session(self) -> str:
        # Parallel first calls of one run still make one session.
        if self.session_id is None:
            async with self._session_lock:
                if self.session_id is None:
                    session = await self.pilot.session_for(self.user_id, None)
                    self.session_id = session.session_id
        return self.session_id
