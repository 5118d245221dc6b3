"""OpenAPI schema objects → plain JSON Schema a model can fill (docs/sources.md).

``$ref`` s are inlined; a reference that recurs is cut at its second appearance and replaced
by a free-form value whose description says so (``RECURSION_MARKER``). OpenAPI 3.0's
``nullable`` becomes a ``null`` type; keywords with no meaning for a model (``xml``,
``example``, ``discriminator``, ``x-*``, ...) are dropped; request schemas lose their
``readOnly`` properties and response schemas their ``writeOnly`` ones. Very deep schemas are
cut at ``max_depth`` the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blockpilot.errors import RefError
from blockpilot.sources.openapi._document import resolve_pointer

RECURSION_MARKER = "[recursive schema cut here: give a JSON value of the same shape as above]"
DEPTH_MARKER = "[nested schema cut here: any JSON value]"

_KEEP = frozenset(
    {
        "type", "description", "title", "properties", "required", "additionalProperties",
        "items", "enum", "const", "anyOf", "oneOf", "allOf", "format", "pattern",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
        "minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "default",
        "prefixItems", "minProperties", "maxProperties", "not",
    }
)  # fmt: skip
_MAX_DESCRIPTION = 400


def convert_schema(
    document: Mapping[str, Any],
    schema: Any,
    *,
    direction: str = "request",
    max_depth: int = 12,
) -> dict[str, Any]:
    """Plain JSON Schema for *schema*. Raises :class:`RefError` for unusable references."""
    return _Converter(document, direction, max_depth).walk(schema, (), 0)


class _Converter:
    def __init__(self, document: Mapping[str, Any], direction: str, max_depth: int) -> None:
        self.document = document
        self.hidden = "readOnly" if direction == "request" else "writeOnly"
        self.max_depth = max_depth

    def walk(self, node: Any, refs: tuple[str, ...], depth: int) -> dict[str, Any]:
        if node is True or node is None:
            return {}
        if node is False:
            return {"not": {}}
        if not isinstance(node, Mapping):
            raise RefError(f"schema must be an object, not {type(node).__name__}")
        if "$ref" in node:
            ref = node["$ref"]
            if ref in refs:
                return {"description": RECURSION_MARKER}
            target = resolve_pointer(self.document, ref)
            merged = self.walk(target, (*refs, ref), depth)
            for key in ("description", "title", "default"):
                if key in node:  # 3.1 allows siblings next to $ref
                    merged[key] = node[key]
            return merged
        if depth > self.max_depth:
            return {"description": DEPTH_MARKER}
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key not in _KEEP:
                continue
            if key == "properties" and isinstance(value, Mapping):
                props = {
                    str(name): self.walk(sub, refs, depth + 1)
                    for name, sub in value.items()
                    if not (isinstance(sub, Mapping) and sub.get(self.hidden) is True)
                }
                out[key] = props
            elif key in ("items", "additionalProperties", "not") and isinstance(value, Mapping):
                out[key] = self.walk(value, refs, depth + 1)
            elif key in ("anyOf", "oneOf", "allOf", "prefixItems") and isinstance(value, list):
                out[key] = [self.walk(sub, refs, depth + 1) for sub in value]
            elif key == "description" and isinstance(value, str):
                out[key] = _short(value)
            elif key in ("exclusiveMinimum", "exclusiveMaximum") and isinstance(value, bool):
                bound = "minimum" if key == "exclusiveMinimum" else "maximum"
                if value and bound in node:  # OpenAPI 3.0's boolean form
                    out[key] = node[bound]
            else:
                out[key] = value
        if "required" in out:
            names = out.get("properties", {})
            out["required"] = [r for r in out["required"] if isinstance(r, str) and r in names]
            if not out["required"]:
                del out["required"]
        for bound in ("minimum", "maximum"):
            exclusive = "exclusiveMinimum" if bound == "minimum" else "exclusiveMaximum"
            if node.get(exclusive) is True and bound in out:
                del out[bound]
        if node.get("nullable") is True:
            out = _nullable(out)
        if out.get("type") == "file":  # Swagger 2 leftovers
            out["type"] = "string"
        return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    if isinstance(kind, list):
        return {**schema, "type": [*kind, "null"]} if "null" not in kind else schema
    if "enum" in schema and None not in schema["enum"]:
        return {**schema, "enum": [*schema["enum"], None]}
    return schema


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DESCRIPTION else text[: _MAX_DESCRIPTION - 1] + "…"


def has_binary(schema: Any) -> bool:
    """True when a schema holds a ``format: binary`` string (a file upload)."""
    if isinstance(schema, Mapping):
        if schema.get("format") == "binary":
            return True
        return any(has_binary(v) for v in schema.values())
    if isinstance(schema, list):
        return any(has_binary(v) for v in schema)
    return False
