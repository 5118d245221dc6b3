"""Tool definitions by format: each format's wrapper around the tool's converted schema."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, Protocol

from blockpilot.json_schema import DIALECTS, SCHEMA_FORMATS, SchemaFormat, check_format
from blockpilot.tools.responses import RESPONSE_OUTPUT_SCHEMA

ToolFormat = SchemaFormat
TOOL_FORMATS: tuple[str, ...] = SCHEMA_FORMATS


class ExportableTool(Protocol):
    """What :func:`export_tool` needs of a tool (``BaseTool`` has it)."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def parameters(self) -> dict[str, Any]: ...


def export_tool(tool: ExportableTool, fmt: str) -> dict[str, Any]:
    """One tool definition as *fmt* expects it.

    ``openai`` / ``openai-strict``: a Chat Completions ``{"type": "function", "function":
    {...}}`` entry (strict adds ``"strict": true``); ``anthropic``: ``{"name",
    "description", "input_schema"}``; ``gemini``: a ``FunctionDeclaration`` (put a list of
    them under ``tools[].functionDeclarations``); ``mcp``: ``{"name", "description",
    "inputSchema"}``.
    """
    check_format(fmt)
    schema = DIALECTS[fmt](tool.parameters)
    if fmt in ("openai", "openai-strict"):
        function: dict[str, Any] = {
            "name": tool.name,
            "description": tool.description,
            "parameters": schema,
        }
        if fmt == "openai-strict":
            function["strict"] = True
        return {"type": "function", "function": function}
    if fmt == "anthropic":
        return {"name": tool.name, "description": tool.description, "input_schema": schema}
    if fmt == "gemini":
        declaration: dict[str, Any] = {"name": tool.name, "description": tool.description}
        if schema.get("properties"):
            declaration["parameters"] = schema
        return declaration
    return _mcp_tool(tool, schema)


def _mcp_tool(tool: ExportableTool, schema: dict[str, Any]) -> dict[str, Any]:
    """The MCP ``Tool`` (what ``tools/list`` answers, ``docs/mcp.md``): name, title,
    description, input and output schema, and annotations from the tool's hints."""
    entry: dict[str, Any] = {"name": tool.name}
    title = getattr(tool, "title", None)
    if title:
        entry["title"] = title
    entry |= {"description": tool.description, "inputSchema": schema}
    hints = None if isinstance(tool, type) else getattr(tool, "hints", None)
    if callable(hints):  # a blockpilot tool (BaseTool): it answers with a tool response
        entry["outputSchema"] = copy.deepcopy(RESPONSE_OUTPUT_SCHEMA)
        entry["annotations"] = {**({"title": title} if title else {}), **hints().as_mcp()}
    return entry


def export_tools(tools: Iterable[ExportableTool], fmt: str) -> list[dict[str, Any]]:
    """Every tool of *tools* in format *fmt* (see :func:`export_tool`)."""
    check_format(fmt)
    return [export_tool(t, fmt) for t in tools]
