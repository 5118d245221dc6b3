"""What a schema node is, and the small edits every dialect makes to one."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from blockpilot.json_schema._vocabulary import (
    KEYWORDS_BY_TYPE,
    SINGLE_SUBSCHEMA,
    SUBSCHEMA_LIST,
    SUBSCHEMA_MAP,
)

JSON_OBJECT_HINT = 'A JSON object, written as a string, e.g. "{\\"key\\": \\"value\\"}".'
JSON_ARRAY_HINT = "A JSON array, written as a string."
JSON_VALUE_HINT = (
    "Any JSON value, written as a string of JSON (e.g. '\"text\"', '42', '{\"a\": 1}')."
)


def map_subschemas(node: dict[str, Any], fn: Callable[[Any], Any]) -> dict[str, Any]:
    """*node* with *fn* applied to each direct subschema (never to data such as enum values)."""
    out = dict(node)
    for key in SINGLE_SUBSCHEMA:
        if isinstance(out.get(key), dict):
            out[key] = fn(out[key])
    for key in SUBSCHEMA_LIST:
        if isinstance(out.get(key), list):
            out[key] = [fn(s) for s in out[key]]
    if isinstance(out.get("items"), list):  # draft-04 tuple form
        out["items"] = [fn(s) for s in out["items"]]
    for key in SUBSCHEMA_MAP:
        if isinstance(out.get(key), dict):
            out[key] = {name: fn(s) for name, s in out[key].items()}
    return out


def types_of(node: Mapping[str, Any]) -> list[str]:
    """The JSON types *node* declares, or implies by its keywords."""
    declared = node.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [t for t in declared if isinstance(t, str)]
    if "properties" in node or "additionalProperties" in node:
        return ["object"]
    if "items" in node or "prefixItems" in node:
        return ["array"]
    return []


def enum_types(node: Mapping[str, Any]) -> list[str]:
    """The JSON types of *node*'s ``enum`` values, sorted (``null`` included)."""
    values = node.get("enum")
    return sorted({json_type(v) for v in values}) if isinstance(values, list) else []


def is_free_object(node: Mapping[str, Any]) -> bool:
    """An object whose keys are not declared: a map, or any object at all."""
    return not node.get("properties")


def is_any(node: Any) -> bool:
    """A schema that says nothing about the value's type (``{}``, ``true``, annotations only)."""
    if node is True:
        return True
    if not isinstance(node, dict):
        return False
    return not (
        types_of(node)
        or any(k in node for k in ("anyOf", "oneOf", "allOf", "enum", "const", "not"))
    )


def allows_null(node: Any) -> bool:
    """Whether ``null`` is a valid value of *node*."""
    if is_any(node):
        return True
    if not isinstance(node, dict):
        return False
    if "null" in types_of(node) or (isinstance(node.get("enum"), list) and None in node["enum"]):
        return True
    if "const" in node and node["const"] is None:
        return True
    return any(allows_null(s) for s in node.get("anyOf", []) + node.get("oneOf", []))


def non_null_branches(node: Mapping[str, Any]) -> list[Any]:
    """The ``anyOf``/``oneOf`` branches of *node* other than a bare ``{"type": "null"}``."""
    branches = node.get("anyOf", node.get("oneOf", []))
    return [
        b for b in branches if not (isinstance(b, dict) and types_of(b) == ["null"] and len(b) <= 2)
    ]


def type_keywords(node: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The keywords of a multi-type node that apply to one of its types."""
    return {k: node[k] for k in KEYWORDS_BY_TYPE.get(kind, ()) if k in node}


def json_type(value: Any) -> str:
    """The JSON type name of a Python value read from JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def json_text(value: Any) -> str:
    """*value* as JSON for a description."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def with_description(node: dict[str, Any], *notes: str) -> dict[str, Any]:
    """*node* with *notes* appended to its description, as sentences."""
    parts = [p.strip() for p in (node.get("description", ""), *notes) if p and p.strip()]
    if parts:
        node["description"] = " ".join(
            p if p.endswith((".", "!", "?", ":")) or i == len(parts) - 1 else p + "."
            for i, p in enumerate(parts)
        )
    return node


def base_annotations(node: Mapping[str, Any], *, keep_default: bool = False) -> dict[str, Any]:
    """The description of *node*, with ``default`` folded in when it cannot be kept."""
    out: dict[str, Any] = {}
    if isinstance(node.get("description"), str) and node["description"]:
        out["description"] = node["description"]
    if "default" in node and not keep_default and node["default"] is not None:
        with_description(out, f"Default: {json_text(node['default'])}.")
    return out
