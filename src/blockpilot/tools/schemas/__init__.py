"""Tool definitions in the formats LLM APIs and MCP expect: :func:`export_tool`.

The schemas inside are converted by :mod:`blockpilot.json_schema` (one transformer, a
dialect per format), whose names this module re-exports, so
``blockpilot.tools.schemas.convert_schema`` and ``restore_arguments`` keep working.

Example::

    tool = export_tool(pilot.tools["run_block"], "openai-strict")
    # ... the model calls it; then, before pilot.call_tool:
    arguments = restore_arguments(pilot.tools["run_block"].parameters, model_arguments)
"""

from __future__ import annotations

from blockpilot.json_schema import (
    DIALECTS,
    GEMINI_KEYWORDS,
    GEMINI_TYPES,
    JSON_SCHEMA_KEYWORDS,
    OPENAI_STRICT_FORMATS,
    OPENAI_STRICT_KEYWORDS,
    GeminiDialect,
    JsonSchemaDialect,
    OpenAIStrictDialect,
    SchemaConversionError,
    SchemaTransformer,
    TypedTransformer,
    convert_schema,
    encode_arguments,
    inline_refs,
    restore_arguments,
    to_anthropic,
    to_gemini,
    to_json_schema,
    to_openai,
    to_openai_strict,
)
from blockpilot.tools.schemas._export import (
    TOOL_FORMATS,
    ExportableTool,
    ToolFormat,
    export_tool,
    export_tools,
)

__all__ = [
    "DIALECTS",
    "GEMINI_KEYWORDS",
    "GEMINI_TYPES",
    "JSON_SCHEMA_KEYWORDS",
    "OPENAI_STRICT_FORMATS",
    "OPENAI_STRICT_KEYWORDS",
    "TOOL_FORMATS",
    "ExportableTool",
    "GeminiDialect",
    "JsonSchemaDialect",
    "OpenAIStrictDialect",
    "SchemaConversionError",
    "SchemaTransformer",
    "ToolFormat",
    "TypedTransformer",
    "convert_schema",
    "encode_arguments",
    "export_tool",
    "export_tools",
    "inline_refs",
    "restore_arguments",
    "to_anthropic",
    "to_gemini",
    "to_json_schema",
    "to_openai",
    "to_openai_strict",
]
