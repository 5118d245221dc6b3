"""Tool definitions in the shapes LLM APIs and MCP expect, all from one definition."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, Literal

from blockpilot.errors import InvalidInputError
from blockpilot.tools.base import BaseTool

ToolFormat = Literal["openai", "anthropic", "mcp"]


def as_openai_tool(tool: BaseTool) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": copy.deepcopy(tool.parameters),
        },
    }


def as_anthropic_tool(tool: BaseTool) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": copy.deepcopy(tool.parameters)}


def as_mcp_tool(tool: BaseTool) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "inputSchema": copy.deepcopy(tool.parameters)}


_EXPORTERS = {"openai": as_openai_tool, "anthropic": as_anthropic_tool, "mcp": as_mcp_tool}


def export_tools(tools: Iterable[BaseTool], fmt: str) -> list[dict[str, Any]]:
    """All *tools* in format *fmt* (``openai``, ``anthropic`` or ``mcp``)."""
    try:
        exporter = _EXPORTERS[fmt]
    except KeyError:
        raise InvalidInputError(f"Unknown tool format {fmt!r}; use one of: openai, anthropic, mcp") from None
    return [exporter(t) for t in tools]
