"""Each format's dialect, and one schema in the dialect of a format."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from blockpilot.errors import InvalidInputError
from blockpilot.json_schema._gemini import GeminiDialect
from blockpilot.json_schema._json_schema import JsonSchemaDialect
from blockpilot.json_schema._openai_strict import OpenAIStrictDialect
from blockpilot.json_schema._transformer import SchemaTransformer

SchemaFormat = Literal["openai", "anthropic", "mcp", "openai-strict", "gemini"]
SCHEMA_FORMATS: tuple[str, ...] = get_args(SchemaFormat)

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
    declaration; ``blockpilot.tools.schemas.export_tool`` does that.

    Raises:
        SchemaConversionError: The schema is recursive or not an object schema.
    """
    return _GEMINI(schema)


def check_format(fmt: str) -> None:
    """Raise :class:`InvalidInputError` unless *fmt* is one of :data:`SCHEMA_FORMATS`."""
    if fmt not in SCHEMA_FORMATS:
        raise InvalidInputError(
            f"Unknown tool format {fmt!r}; use one of: {', '.join(SCHEMA_FORMATS)}"
        )


def convert_schema(schema: Mapping[str, Any], fmt: str) -> dict[str, Any]:
    """*schema* (a tool's parameters or a block's input schema) in the dialect of *fmt*."""
    check_format(fmt)
    return DIALECTS[fmt](schema)
