"""What a tool is: its definition (name, title, description, arguments, hints) and its body.

Every call reaches a body through :meth:`blockpilot.pilot.Pilot.run_call`, the one place
that checks sign-in and the arguments' shape, applies the time limit and catches the
unexpected (docs/tools.md#what-every-tool-call-goes-through).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from blockpilot.tools.responses import ToolResponseBase

DEFAULT_TOOL_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class ToolHints:
    """What calling a tool does, for clients that ask before acting (MCP tool annotations).

    The defaults are the cautious answer: it may change anything, irreversibly, in the world
    outside. See ``docs/mcp.md``.
    """

    read_only: bool = False
    destructive: bool = True
    idempotent: bool = False
    open_world: bool = True

    def as_mcp(self) -> dict[str, bool]:
        """The MCP ``ToolAnnotations`` hint fields."""
        return {
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive,
            "idempotentHint": self.idempotent,
            "openWorldHint": self.open_world,
        }


@dataclass(frozen=True, slots=True)
class ToolCall:
    """Who calls a tool, in which chat session, and with which API key (None: a call made
    without one, e.g. through the library or the CLI)."""

    user_id: str | None
    session_id: str | None
    api_key_id: str | None = None

    def signed_in(self) -> tuple[str, str]:
        """The user and chat session of a call to a tool that requires sign-in.

        :meth:`blockpilot.pilot.Pilot.run_call` answers ``need_login`` before such a tool's
        body runs without them, so through it this never fails.
        """
        if not self.user_id or self.session_id is None:
            raise RuntimeError("a tool that requires sign-in was called around Pilot.run_call")
        return self.user_id, self.session_id


class BaseTool(ABC):
    """A copilot tool: its definition, which every door exports unchanged, and its body.

    The definition is the class attributes (:attr:`name`, :attr:`title`,
    :attr:`description`, the JSON-Schema :attr:`parameters`, :attr:`requires_auth`), plus
    :meth:`hints` and :meth:`time_limit`. :meth:`run` is the body; it is called only by
    :meth:`blockpilot.pilot.Pilot.run_call`, with a signed-in user (when the tool requires
    one: :meth:`ToolCall.signed_in`) and arguments that are an object of declared names.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    parameters: ClassVar[dict[str, Any]]
    requires_auth: ClassVar[bool] = True
    title: ClassVar[str | None] = None
    """A human-readable name (shown by MCP clients)."""

    def __init__(self, timeout_seconds: float = DEFAULT_TOOL_TIMEOUT) -> None:
        self.timeout_seconds = timeout_seconds

    def hints(self) -> ToolHints:
        """What calling this tool does (see :class:`ToolHints`); override to say less."""
        return ToolHints()

    def time_limit(self, arguments: dict[str, Any]) -> float:
        """Seconds this call may take before it is answered ``timeout``; a tool whose body
        has its own, inner limit extends this so that the inner one fires first."""
        return self.timeout_seconds

    @abstractmethod
    async def run(self, call: ToolCall, **arguments: Any) -> ToolResponseBase:
        """The tool body; arguments are the model's, unvalidated beyond their names."""
