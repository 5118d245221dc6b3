"""Plain JSON Schema: what OpenAI (without strict mode), Anthropic and MCP accept."""

from __future__ import annotations

from typing import Any

from blockpilot.json_schema._nodes import map_subschemas
from blockpilot.json_schema._transformer import SchemaTransformer
from blockpilot.json_schema._vocabulary import JSON_SCHEMA_KEYWORDS


class JsonSchemaDialect(SchemaTransformer):
    """The schema as it is, self-contained and without blockpilot's annotation keys.

    ``$ref`` s are inlined and ``$defs`` dropped; keys that are not JSON Schema keywords
    (``advanced``, ``placeholder``, ``credentials_*``, ``discriminator*``) go; the root is
    an object with ``properties``.
    """

    def root(self, root: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = _clean(root)
        result["type"] = "object"
        result.setdefault("properties", {})
        return result


def _clean(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    return map_subschemas({k: v for k, v in node.items() if k in JSON_SCHEMA_KEYWORDS}, _clean)
