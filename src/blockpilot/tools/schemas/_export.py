"""Schemas and tool definitions by format: each format's dialect and the wrapper it expects."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Protocol, get_args

from blockpilot.errors import InvalidInputError
from blockpilot.tools.responses import RESPONSE_OUTPUT_SCHEMA
from blockpilot.tools.schemas._gemini import GeminiDialect
from blockpilot.tools.schemas._json_schema import JsonSchemaDialect
from blockpilot.tools.schemas._openai_strict import OpenAIStrictDialect
from blockpilot.tools.schemas._transformer import SchemaTransformer

ToolFormat = Literal["openai", "anthropic", "mcp", "openai-strict", "gemini"]
TOOL_FORMATS: tuple[str, ...] = get_args(ToolFormat)

_JSON_SCHEMA = JsonSchemaDialect()
_OPENAI_STRICT = OpenAIStrictDialect()
_GEMINI = GeminiDialect()
DIALECTS: dict[str, SchemaTransformer] = {
    "openai": _JSON_SCHEMA,
    "anthropic": _JSON_SCHEMA,
    "mcp": _JSON_SCHEMA,
    "openai-strict": _OPENAI_STRICT,
    "gemini": _GEMINI,
}


class ExportableTool(Protocol):
    """What :func:`export_tool` needs of a tool (``BaseTool`` has it)."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def parameters(self) -> dict[str, Any]: ...


def to_json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A self-contained, standard JSON Schema object: ``$ref`` s inlined, our annotations gone.

    This is the shape OpenAI (non-strict), Anthropic and MCP accept.
    """
    return _JSON_SCHEMA(schema)


def to_anthropic(schema: Mapping[str, Any]) -> dict[str, Any]:
    """An Anthropic tool ``input_schema`` (JSON Schema, ``type: object`` at the root)."""
    return _JSON_SCHEMA(schema)


def to_openai(schema: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI function ``parameters`` without strict mode (JSON Schema, object root)."""
    return _JSON_SCHEMA(schema)


def to_openai_strict(schema: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI strict-mode ``parameters``: closed objects, all properties required.

    Optional properties become nullable (send ``null`` to omit); free-form objects and
    untyped values become JSON-in-a-string; unsupported keywords move into descriptions.

    Raises:
        SchemaConversionError: The schema is recursive, or its root is not an object with
            declared properties (an open root cannot be closed without losing everything).
    """
    return _OPENAI_STRICT(schema)


def to_gemini(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A Gemini ``FunctionDeclaration.parameters`` schema (OpenAPI 3.0 subset).

    An object with no properties at all (a tool without arguments) must be left out of the
    declaration; :func:`export_tool` does that.

    Raises:
        SchemaConversionError: The schema is recursive or not an object schema.
    """
    return _GEMINI(schema)


def _check_format(fmt: str) -> None:
    if fmt not in TOOL_FORMATS:
        raise InvalidInputError(
            f"Unknown tool format {fmt!r}; use one of: {', '.join(TOOL_FORMATS)}"
        )


def convert_schema(schema: Mapping[str, Any], fmt: str) -> dict[str, Any]:
    """*schema* (a tool's parameters or a block's input schema) in the dialect of *fmt*."""
    _check_format(fmt)
    return DIALECTS[fmt](schema)


def export_tool(tool: ExportableTool, fmt: str) -> dict[str, Any]:
    """One tool definition as *fmt* expects it.

    ``openai`` / ``openai-strict``: a Chat Completions ``{"type": "function", "function":
    {...}}`` entry (strict adds ``"strict": true``); ``anthropic``: ``{"name",
    "description", "input_schema"}``; ``gemini``: a ``FunctionDeclaration`` (put a list of
    them under ``tools[].functionDeclarations``); ``mcp``: ``{"name", "description",
    "inputSchema"}``.
    """
    _check_format(fmt)
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
    _check_format(fmt)
    return [export_tool(t, fmt) for t in tools]
