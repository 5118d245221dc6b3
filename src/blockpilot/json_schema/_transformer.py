"""One walk over a tool's input schema, with a hook for each thing a dialect spells its own way.

A :class:`SchemaTransformer` takes the schema as we define it (draft 2020-12, as pydantic
writes it), inlines its ``$ref`` s (:func:`~blockpilot.json_schema.inline_refs`), checks
that the root is an object, and hands it to :meth:`SchemaTransformer.root`.

Most providers know only a subset of JSON Schema in which every value has one type.
:class:`TypedTransformer` lowers a schema into that subset in one pass: ``allOf`` merged,
``const`` as a one-value ``enum``, ``anyOf``/``oneOf`` as a union, a list of types split
into a union of single types, free-form objects and untyped values as JSON in a string.
Its subclasses (``docs/tools.md#tool-schemas-for-llm-apis``) say how their dialect spells a
type name, ``null``, a union, an object, an enum and the constraints of a string or number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blockpilot.errors import SchemaConversionError
from blockpilot.json_schema._nodes import (
    JSON_ARRAY_HINT,
    JSON_OBJECT_HINT,
    JSON_VALUE_HINT,
    base_annotations,
    enum_types,
    is_any,
    is_free_object,
    type_keywords,
    types_of,
    with_description,
)
from blockpilot.json_schema._refs import inline_refs, merge_all_of


class SchemaTransformer:
    """A tool's input schema in one provider's dialect: ``transformer(schema)``.

    Instances hold no state, so one serves every call.
    """

    def __call__(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        """*schema* in this dialect.

        Raises:
            SchemaConversionError: The schema is recursive, refers outside itself, its root
                is not an object, or the dialect cannot express it.
        """
        root = self.prepare(inline_refs(schema))
        if "object" not in types_of(root):
            raise SchemaConversionError("A tool's input schema must be a JSON object schema")
        return self.root(root)

    def prepare(self, root: dict[str, Any]) -> dict[str, Any]:
        """The self-contained root before its type is checked (unchanged by default)."""
        return root

    def root(self, root: dict[str, Any]) -> dict[str, Any]:
        """The converted root object."""
        raise NotImplementedError


class TypedTransformer(SchemaTransformer):
    """The walk for dialects in which every value has one type (or is a union of such)."""

    #: Whether ``{"type": "array"}`` without ``items`` goes as a JSON string (else: untyped items).
    arrays_need_items = False

    def prepare(self, root: dict[str, Any]) -> dict[str, Any]:
        return merge_all_of(root)

    def root(self, root: dict[str, Any]) -> dict[str, Any]:
        return self.object(root)

    # -- the walk ------------------------------------------------------------------------

    def value(self, node: Any) -> dict[str, Any]:
        """Any subschema, lowered to this dialect."""
        if not isinstance(node, dict) or is_any(node):
            base = node if isinstance(node, dict) else {}
            return self.json_string(base_annotations(base), JSON_VALUE_HINT)
        node = merge_all_of(node)
        if "const" in node:
            node = {**{k: v for k, v in node.items() if k != "const"}, "enum": [node["const"]]}
        branches = node.get("anyOf", node.get("oneOf"))
        if isinstance(branches, list):
            return self.union(node, branches)
        return self.by_types(node)

    def by_types(self, node: dict[str, Any]) -> dict[str, Any]:
        """A node without union keywords: one type, a union of its types, or ``null`` only."""
        types = types_of(node) or enum_types(node)
        rest = [t for t in types if t != "null"]
        if len(rest) > 1:
            out = base_annotations(node)
            out["anyOf"] = [self.value({**type_keywords(node, t), "type": t}) for t in rest]
        elif rest:
            out = self.typed(node, rest[0])
        else:
            out = self.null(node)
        return self.nullable(out) if self.is_nullable(node, types) else out

    def union(self, node: dict[str, Any], branches: list[Any]) -> dict[str, Any]:
        """An ``anyOf``/``oneOf``: one member is merged into its parent, several stay a union."""
        members = [self.value(b) for b in self.union_members(node, branches)]
        out = base_annotations(node)
        if len(members) == 1:
            out = {**members[0], **out}
        elif members:
            out["anyOf"] = members
        else:
            out["type"] = self.type_name("string")
        return self.nullable(out) if self.union_is_nullable(branches) else out

    def typed(self, node: dict[str, Any], kind: str) -> dict[str, Any]:
        """A node of one JSON type *kind* (never ``null``)."""
        out = self.annotations_for(node, kind)
        if kind == "object":
            return (
                self.json_string(out, JSON_OBJECT_HINT)
                if is_free_object(node)
                else self.object(node)
            )
        if kind == "array":
            return self.array(node, out)
        out["type"] = self.type_name(kind)
        self.enum(node, kind, out)
        if kind == "string":
            self.string(node, out)
        elif kind in ("number", "integer"):
            self.number(node, out)
        return out

    def object(self, node: Mapping[str, Any]) -> dict[str, Any]:
        """An object with declared properties."""
        out = base_annotations(node)
        properties = node.get("properties") or {}
        required = node.get("required", [])
        out["type"] = self.type_name("object")
        out["properties"] = {
            name: self.property(sub, optional=name not in required)
            for name, sub in properties.items()
        }
        return self.close_object(node, out)

    def array(self, node: Mapping[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        """An array: typed items, or a JSON string for tuples (and item-less arrays if need be)."""
        items = node.get("items")
        if (
            "prefixItems" in node
            or isinstance(items, list)
            or (items is None and self.arrays_need_items)
        ):
            return self.json_string(out, JSON_ARRAY_HINT)
        out["type"] = self.type_name("array")
        out["items"] = self.value(items if items is not None else {})
        for key in ("minItems", "maxItems"):
            if key in node:
                out[key] = node[key]
        return out

    def json_string(self, out: dict[str, Any], hint: str) -> dict[str, Any]:
        """A value the model sends as a string holding JSON (see ``restore_arguments``)."""
        return with_description({**out, "type": self.type_name("string")}, hint)

    # -- what each dialect spells its own way --------------------------------------------

    def type_name(self, kind: str) -> str:
        """How the dialect names a JSON type."""
        return kind

    def annotations_for(self, node: Mapping[str, Any], kind: str) -> dict[str, Any]:
        """The description (and default, where the dialect keeps one) of a *kind* node."""
        return base_annotations(node)

    def property(self, node: Any, *, optional: bool) -> dict[str, Any]:
        """One property of an object."""
        return self.value(node)

    def close_object(self, node: Mapping[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        """*out* (type and properties set) with the dialect's ``required`` and object bounds."""
        raise NotImplementedError

    def union_members(self, node: Mapping[str, Any], branches: list[Any]) -> list[Any]:
        """The branches of a union that become members."""
        return branches

    def union_is_nullable(self, branches: list[Any]) -> bool:
        """Whether a union is marked nullable after its members are converted."""
        return False

    def is_nullable(self, node: Mapping[str, Any], types: list[str]) -> bool:
        """Whether a node of *types* is marked nullable after it is converted."""
        raise NotImplementedError

    def nullable(self, out: dict[str, Any]) -> dict[str, Any]:
        """*out* also accepting ``null``."""
        raise NotImplementedError

    def null(self, node: dict[str, Any]) -> dict[str, Any]:
        """A node with no type but ``null``."""
        raise NotImplementedError

    def enum(self, node: Mapping[str, Any], kind: str, out: dict[str, Any]) -> None:
        """Put *node*'s ``enum`` (if any) into *out*."""
        raise NotImplementedError

    def string(self, node: Mapping[str, Any], out: dict[str, Any]) -> None:
        """Put a string's pattern, format and lengths into *out*."""
        raise NotImplementedError

    def number(self, node: Mapping[str, Any], out: dict[str, Any]) -> None:
        """Put a number's bounds into *out*."""
        raise NotImplementedError
