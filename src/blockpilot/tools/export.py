"""Tool definitions in the shapes LLM APIs and MCP expect, all from one definition.

The schema dialects themselves (OpenAI strict mode, Gemini's OpenAPI subset, …) live in
:mod:`blockpilot.tools.schemas`; this module keeps the names the rest of the code uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from blockpilot.tools.base import BaseTool
from blockpilot.tools.schemas import TOOL_FORMATS, ToolFormat, export_tool
from blockpilot.tools.schemas import export_tools as _export_tools


def as_openai_tool(tool: BaseTool) -> dict[str, Any]:
    return export_tool(tool, "openai")


def as_openai_strict_tool(tool: BaseTool) -> dict[str, Any]:
    return export_tool(tool, "openai-strict")


def as_anthropic_tool(tool: BaseTool) -> dict[str, Any]:
    return export_tool(tool, "anthropic")


def as_gemini_tool(tool: BaseTool) -> dict[str, Any]:
    return export_tool(tool, "gemini")


def as_mcp_tool(tool: BaseTool) -> dict[str, Any]:
    return export_tool(tool, "mcp")


def export_tools(tools: Iterable[BaseTool], fmt: str) -> list[dict[str, Any]]:
    """All *tools* in format *fmt*: ``openai``, ``anthropic``, ``mcp``, ``openai-strict``
    or ``gemini`` (see :func:`blockpilot.tools.schemas.export_tool`)."""
    return _export_tools(tools, fmt)


__all__ = [
    "TOOL_FORMATS",
    "ToolFormat",
    "as_anthropic_tool",
    "as_gemini_tool",
    "as_mcp_tool",
    "as_openai_strict_tool",
    "as_openai_tool",
    "export_tool",
    "export_tools",
]
