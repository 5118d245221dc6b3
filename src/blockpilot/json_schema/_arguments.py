"""A model's arguments between the shape a dialect asks for and the shape we define.

Strict mode and Gemini get free-form objects, untyped values and tuples as strings holding
JSON, and strict mode gets ``null`` for every omitted optional property. These functions
undo that (:func:`restore_arguments`) and do it (:func:`encode_arguments`, for tests and
scripted models).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from blockpilot.json_schema._nodes import (
    allows_null,
    is_any,
    is_free_object,
    json_type,
    non_null_branches,
    types_of,
)
from blockpilot.json_schema._refs import inline_refs, merge_all_of


def _encoded_as_string(node: Any) -> bool:
    """Whether strict mode and Gemini send this node's value as a JSON string."""
    if not isinstance(node, dict) or is_any(node):
        return True
    node = merge_all_of(node)
    if "anyOf" in node or "oneOf" in node or "enum" in node or "const" in node:
        return False
    types = [t for t in types_of(node) if t != "null"]
    if types == ["object"]:
        return is_free_object(node)
    if types == ["array"]:
        return "prefixItems" in node or isinstance(node.get("items"), list) or "items" not in node
    return False


def restore_arguments(schema: Mapping[str, Any], arguments: Any) -> Any:
    """A model's arguments for a converted schema, back in the shape *schema* describes.

    Strings standing for free-form objects or untyped values are parsed (left as they are
    when they are not JSON), and ``null`` s given for optional properties that do not accept
    null (or whose default is null) are dropped. Anything else passes through unchanged, so
    validation afterwards reports what is really wrong.
    """
    return _restore(inline_refs(schema), arguments)


def _restore(node: Any, value: Any) -> Any:
    if _encoded_as_string(node) and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if not isinstance(node, dict):
        return value
    node = merge_all_of(node)
    branches = node.get("anyOf", node.get("oneOf"))
    if isinstance(branches, list):
        for branch in non_null_branches(node):
            if _matches_kind(branch, value):
                return _restore(branch, value)
        return value
    if isinstance(value, dict) and node.get("properties"):
        return _restore_object(node, value)
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [_restore(node["items"], v) for v in value]
    return value


def _restore_object(node: Mapping[str, Any], value: Mapping[str, Any]) -> dict[str, Any]:
    properties = node["properties"]
    required = set(node.get("required", []))
    out: dict[str, Any] = {}
    for name, item in value.items():
        sub = properties.get(name)
        if sub is None:
            out[name] = item
        elif item is None and name not in required and _omit_null(sub):
            continue
        else:
            out[name] = _restore(sub, item)
    return out


def _omit_null(node: Any) -> bool:
    if not isinstance(node, dict):
        return False
    return not allows_null(node) or node.get("default", None) is None


def _matches_kind(node: Any, value: Any) -> bool:
    if not isinstance(node, dict) or is_any(node):
        return True
    if isinstance(value, str) and _encoded_as_string(node):
        return True
    kinds = types_of(node)
    if not kinds:
        return True
    actual = json_type(value)
    return actual in kinds or (actual == "integer" and "number" in kinds)


def encode_arguments(schema: Mapping[str, Any], arguments: Any, fmt: str) -> Any:
    """Arguments in the shape the *fmt* version of *schema* expects (the inverse of restore).

    For ``openai-strict`` omitted optional properties become ``null``; for ``openai-strict``
    and ``gemini`` free-form objects and untyped values become JSON strings. Other formats
    use the schema unchanged, so the arguments are returned as they are.
    """
    if fmt not in ("openai-strict", "gemini"):
        return copy.deepcopy(arguments)
    return _encode(inline_refs(schema), arguments, fill_nulls=fmt == "openai-strict")


def _encode(node: Any, value: Any, *, fill_nulls: bool) -> Any:
    if _encoded_as_string(node):
        return json.dumps(value, ensure_ascii=False)
    if not isinstance(node, dict):
        return value
    node = merge_all_of(node)
    branches = node.get("anyOf", node.get("oneOf"))
    if isinstance(branches, list):
        for branch in non_null_branches(node):
            if _matches_kind(branch, value) and value is not None:
                return _encode(branch, value, fill_nulls=fill_nulls)
        return value
    if isinstance(value, dict) and node.get("properties"):
        return _encode_object(node, value, fill_nulls=fill_nulls)
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [_encode(node["items"], v, fill_nulls=fill_nulls) for v in value]
    return value


def _encode_object(
    node: Mapping[str, Any], value: Mapping[str, Any], *, fill_nulls: bool
) -> dict[str, Any]:
    properties = node["properties"]
    out = {
        name: _encode(properties[name], item, fill_nulls=fill_nulls) if name in properties else item
        for name, item in value.items()
    }
    if fill_nulls:
        for name in properties:
            out.setdefault(name, None)
        out = {name: out[name] for name in [*properties, *value] if name in out}
    return out
