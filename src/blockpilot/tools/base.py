"""The tool wrapper every tool shares: sign-in check, timeout, and the catch-all at the edge."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from blockpilot.tools.responses import ErrorResponse, NeedLoginResponse, ToolResponseBase

logger = logging.getLogger(__name__)

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


class BaseTool(ABC):
    """A copilot tool: name, description, JSON-Schema parameters and an async body.

    :meth:`execute` is the only entry point front doors use. It never raises: a missing
    user becomes ``need_login`` (the body does not run), unknown arguments and timeouts
    become ``error`` responses, and any unexpected exception is logged with its traceback
    and reported as a generic error.
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
    async def _execute(self, call: ToolCall, **arguments: Any) -> ToolResponseBase:
        """The tool body; arguments are the model's, unvalidated beyond their names."""

    async def execute(self, call: ToolCall, arguments: Any) -> ToolResponseBase:
        if self.requires_auth and not call.user_id:
            return NeedLoginResponse(
                message=f"Please sign in to use {self.name}", session_id=call.session_id
            )
        if not isinstance(arguments, dict):
            return ErrorResponse(
                message=f"Arguments of {self.name} must be a JSON object",
                error="invalid_arguments",
                code="invalid_arguments",
                session_id=call.session_id,
            )
        unknown = sorted(set(arguments) - set(self.parameters.get("properties", {})))
        if unknown:
            return ErrorResponse(
                message=(
                    f"Unknown argument(s) for {self.name}: {', '.join(map(str, unknown))}. "
                    f"Valid arguments: {', '.join(self.parameters.get('properties', {}))}."
                ),
                error="invalid_arguments",
                code="invalid_arguments",
                session_id=call.session_id,
            )
        limit = self.time_limit(arguments)
        deadline = asyncio.timeout(limit)
        try:
            async with deadline:
                return await self._execute(call, **arguments)
        except TimeoutError:
            if not deadline.expired():  # raised inside the body: a failure, not our timeout
                return self._unexpected(call)
            return ErrorResponse(
                message=f"{self.name} timed out after {limit:g}s",
                error="timeout",
                code="timeout",
                session_id=call.session_id,
            )
        except Exception:
            return self._unexpected(call)

    def _unexpected(self, call: ToolCall) -> ErrorResponse:
        """Log the exception being handled, with its traceback; answer generically."""
        logger.exception("tool failed unexpectedly", extra={"tool": self.name})
        return ErrorResponse(
            message=f"An error occurred while executing {self.name}",
            error="internal_error",
            code="internal_error",
            session_id=call.session_id,
        )
