"""OpenAI function calling and Structured Outputs with ``strict: true``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blockpilot.errors import SchemaConversionError
from blockpilot.json_schema._nodes import enum_types, types_of, with_description
from blockpilot.json_schema._transformer import TypedTransformer
from blockpilot.json_schema._vocabulary import OPENAI_STRICT_FORMATS

_NUMBER_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


class OpenAIStrictDialect(TypedTransformer):
    """Closed objects, every property required, only the documented keyword subset.

    An optional property becomes required-but-nullable (the model sends ``null`` to omit
    it); ``minLength``/``maxLength``, ``default``, ``uniqueItems`` and unknown ``format`` s
    move into the description; ``oneOf`` becomes ``anyOf``; ``null`` is a type of its own
    (``["string", "null"]``, or a ``{"type": "null"}`` member of an ``anyOf``).
    """

    def root(self, root: dict[str, Any]) -> dict[str, Any]:
        if "properties" not in root and root.get("additionalProperties", True) is not False:
            raise SchemaConversionError(
                "Strict mode needs the root object's properties declared; "
                "this one accepts any object"
            )
        return self.object(root)

    def property(self, node: Any, *, optional: bool) -> dict[str, Any]:
        converted = self.value(node)
        return self.nullable(converted) if optional else converted

    def close_object(self, node: Mapping[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
        return out

    def is_nullable(self, node: Mapping[str, Any], types: list[str]) -> bool:
        return len(types) > 1 and "null" in types

    def nullable(self, out: dict[str, Any]) -> dict[str, Any]:
        out = dict(out)
        if "anyOf" in out:
            if not any(b.get("type") == "null" for b in out["anyOf"]):
                out["anyOf"] = [*out["anyOf"], {"type": "null"}]
            return out
        kind = out.get("type")
        if isinstance(kind, str) and kind != "null":
            out["type"] = [kind, "null"]
        elif isinstance(kind, list) and "null" not in kind:
            out["type"] = [*kind, "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        return out

    def null(self, node: dict[str, Any]) -> dict[str, Any]:
        if not (types_of(node) or enum_types(node)):
            raise SchemaConversionError(
                "Strict mode needs a type or values for every schema; one has neither"
            )
        out = self.annotations_for(node, "null")
        out["type"] = "null"
        self.enum(node, "null", out)
        return out

    def array(self, node: Mapping[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        out = super().array(node, out)
        if out.get("type") == "array" and node.get("uniqueItems"):
            with_description(out, "Items must be unique.")
        return out

    def enum(self, node: Mapping[str, Any], kind: str, out: dict[str, Any]) -> None:
        if isinstance(node.get("enum"), list):
            out["enum"] = list(node["enum"])

    def string(self, node: Mapping[str, Any], out: dict[str, Any]) -> None:
        if "pattern" in node:
            out["pattern"] = node["pattern"]
        fmt = node.get("format")
        if fmt in OPENAI_STRICT_FORMATS:
            out["format"] = fmt
        elif isinstance(fmt, str):
            with_description(out, f"Format: {fmt}.")
        with_description(out, *_length_notes(node))

    def number(self, node: Mapping[str, Any], out: dict[str, Any]) -> None:
        for key in _NUMBER_KEYWORDS:
            if key in node:
                out[key] = node[key]


def _length_notes(node: Mapping[str, Any]) -> list[str]:
    low, high = node.get("minLength"), node.get("maxLength")
    if low is not None and high is not None:
        return [f"Between {low} and {high} characters."]
    if high is not None:
        return [f"At most {high} characters."]
    if low is not None:
        return [f"At least {low} characters."]
    return []
