"""One self-contained schema: ``$ref`` s inlined, one-member and object ``allOf`` s merged."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from blockpilot.errors import SchemaConversionError
from blockpilot.json_schema._nodes import map_subschemas


def inline_refs(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of *schema* with every local ``$ref`` replaced by its target, ``$defs`` dropped.

    Keywords next to a ``$ref`` (a description, a default) are kept and win over the
    target's. ``allOf`` with one member (pydantic's way to describe a referenced model) is
    merged into its parent.

    Raises:
        SchemaConversionError: A reference is recursive, remote, or does not resolve.
    """
    root = copy.deepcopy(dict(schema))

    def walk(node: Any, stack: tuple[str, ...]) -> Any:
        if not isinstance(node, dict):
            return node
        node = dict(node)
        while "$ref" in node:
            ref = node.pop("$ref")
            if ref in stack:
                raise SchemaConversionError(
                    f"Recursive schema ({ref}) cannot be inlined for this provider"
                )
            stack = (*stack, ref)
            node = {**_resolve(root, ref), **node}
        members = node.get("allOf")
        if isinstance(members, list) and len(members) == 1 and isinstance(members[0], dict):
            del node["allOf"]
            node = {**walk(members[0], stack), **node}
        return map_subschemas(node, lambda child: walk(child, stack))

    result: dict[str, Any] = walk(root, ())
    result.pop("$defs", None)
    result.pop("definitions", None)
    return result


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    """The schema a local JSON-pointer *ref* points at in *root*."""
    if not ref.startswith("#"):
        raise SchemaConversionError(f"Only local $refs can be inlined, not {ref[:100]!r}")
    node: Any = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise SchemaConversionError(f"$ref {ref[:100]!r} does not resolve")
        node = node[part]
    if not isinstance(node, dict):
        raise SchemaConversionError(f"$ref {ref[:100]!r} does not point to a schema")
    return node


def merge_all_of(node: dict[str, Any]) -> dict[str, Any]:
    """Fold an ``allOf`` of object schemas into one object (strict mode and Gemini lack allOf)."""
    members = node.get("allOf")
    if not isinstance(members, list):
        return node
    merged = {k: v for k, v in node.items() if k != "allOf"}
    for member in members:
        if not isinstance(member, dict):
            raise SchemaConversionError("allOf with boolean members cannot be converted")
        for key, value in merge_all_of(member).items():
            _merge_keyword(merged, key, value)
    return merged


def _merge_keyword(merged: dict[str, Any], key: str, value: Any) -> None:
    if key == "properties":
        merged["properties"] = {**merged.get("properties", {}), **value}
    elif key == "required":
        merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
    elif key in merged and merged[key] != value and key not in ("title", "description"):
        raise SchemaConversionError(f"allOf members disagree on {key!r}; cannot merge")
    else:
        merged.setdefault(key, value)
