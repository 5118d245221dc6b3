"""Gemini ``FunctionDeclaration.parameters``: a ``Schema`` object (an OpenAPI 3.0 subset)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blockpilot.json_schema._nodes import (
    allows_null,
    base_annotations,
    json_text,
    json_type,
    non_null_branches,
    with_description,
)
from blockpilot.json_schema._transformer import TypedTransformer
from blockpilot.json_schema._vocabulary import GEMINI_STRING_FORMATS

_SCALARS = ("string", "number", "integer", "boolean")


class GeminiDialect(TypedTransformer):
    """Upper-case type names, ``nullable`` instead of a null type, string-only enums.

    No ``additionalProperties`` and no ``$ref``; an array without ``items`` goes as JSON in a
    string like a free-form object; a scalar keeps a ``default`` of its own type;
    ``exclusiveMinimum``/``exclusiveMaximum``/``multipleOf``, non-string enums and unknown
    formats move into the description. An object with no properties at all (a tool without
    arguments) must be left out of the declaration; ``export_tool`` does that.
    """

    arrays_need_items = True

    def type_name(self, kind: str) -> str:
        return kind.upper()

    def annotations_for(self, node: Mapping[str, Any], kind: str) -> dict[str, Any]:
        default = node.get("default")
        default_type = json_type(default)
        keep = kind in _SCALARS and (
            default_type == kind or (kind, default_type) == ("number", "integer")
        )
        out = base_annotations(node, keep_default=keep)
        if keep:
            out["default"] = default
        return out

    def close_object(self, node: Mapping[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        required = [name for name in node.get("required", []) if name in out["properties"]]
        if required:
            out["required"] = required
        for key in ("minProperties", "maxProperties"):
            if key in node:
                out[key] = node[key]
        return out

    def union_members(self, node: Mapping[str, Any], branches: list[Any]) -> list[Any]:
        return non_null_branches(node)

    def union_is_nullable(self, branches: list[Any]) -> bool:
        return allows_null({"anyOf": branches})

    def is_nullable(self, node: Mapping[str, Any], types: list[str]) -> bool:
        return "null" in types or (isinstance(node.get("enum"), list) and None in node["enum"])

    def nullable(self, out: dict[str, Any]) -> dict[str, Any]:
        out["nullable"] = True
        return out

    def null(self, node: dict[str, Any]) -> dict[str, Any]:
        out = with_description({**base_annotations(node), "type": "STRING"}, "Always null.")
        return self.nullable(out)

    def enum(self, node: Mapping[str, Any], kind: str, out: dict[str, Any]) -> None:
        values = node.get("enum")
        if not isinstance(values, list):
            return
        values = [v for v in values if v is not None]
        if kind == "string" and all(isinstance(v, str) for v in values):
            out["format"] = "enum"
            out["enum"] = values
        else:
            with_description(out, f"One of: {', '.join(json_text(v) for v in values)}.")

    def string(self, node: Mapping[str, Any], out: dict[str, Any]) -> None:
        for key in ("minLength", "maxLength", "pattern"):
            if key in node:
                out[key] = node[key]
        fmt = node.get("format")
        if fmt in GEMINI_STRING_FORMATS and "enum" not in out:
            out["format"] = fmt
        elif isinstance(fmt, str) and fmt != "enum":
            with_description(out, f"Format: {fmt}.")

    def number(self, node: Mapping[str, Any], out: dict[str, Any]) -> None:
        for key in ("minimum", "maximum"):
            if key in node:
                out[key] = node[key]
        if "exclusiveMinimum" in node:
            with_description(out, f"Greater than {node['exclusiveMinimum']}.")
        if "exclusiveMaximum" in node:
            with_description(out, f"Less than {node['exclusiveMaximum']}.")
        if "multipleOf" in node:
            with_description(out, f"A multiple of {node['multipleOf']}.")
