"""JSON Schemas in the dialects LLM providers accept, from the one schema we define.

Our tools' ``parameters`` and every block's ``Input.jsonschema()`` are ordinary JSON Schema
(draft 2020-12, as pydantic writes it). Providers accept different subsets of it:

``openai`` / ``anthropic`` / ``mcp``
    Plain JSON Schema. We inline ``$ref`` s, drop ``$defs`` and remove blockpilot's own
    annotation keys (``advanced``, ``placeholder``, ``credentials_*``, ``discriminator*``),
    which are not JSON Schema keywords; the root is an object.

``openai-strict``
    OpenAI function calling / Structured Outputs with ``strict: true``: every object lists
    all its properties in ``required`` and has ``additionalProperties: false``; an optional
    property becomes required-but-nullable; only the documented keyword subset is kept
    (``minLength``/``maxLength``, ``default`` and unknown ``format`` s move into the
    description); ``oneOf`` becomes ``anyOf``; no ``$ref``.

``gemini``
    A Gemini ``FunctionDeclaration.parameters`` ``Schema`` (a subset of OpenAPI 3.0): upper-case
    ``type`` names (``STRING``, ``OBJECT``, …), ``nullable`` instead of a null type, string-only
    ``enum`` s, no ``additionalProperties``, no ``$ref``, and every ``OBJECT`` with properties.

Two shapes have no strict/Gemini equivalent: a **free-form object** (``{"type": "object"}``
with no declared properties, e.g. ``run_block``'s ``input_data`` or a block's ``headers``
map) and an **untyped value** (``{}``). Both are sent as a *string holding JSON*, and the
description says so. :func:`restore_arguments` turns a model's arguments back into the
original shape (parsing those strings, dropping the ``null`` s strict mode forces for omitted
optional fields); :func:`encode_arguments` is its inverse.

Example::

    tool = export_tool(pilot.tools["run_block"], "openai-strict")
    # ... the model calls it; then, before pilot.call_tool:
    arguments = restore_arguments(pilot.tools["run_block"].parameters, model_arguments)
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Protocol, get_args

from blockpilot.errors import InvalidInputError, SchemaConversionError
from blockpilot.tools.responses import RESPONSE_OUTPUT_SCHEMA

ToolFormat = Literal["openai", "anthropic", "mcp", "openai-strict", "gemini"]
TOOL_FORMATS: tuple[str, ...] = get_args(ToolFormat)

# OpenAI strict mode: the documented subset ("Supported schemas" of Structured Outputs).
OPENAI_STRICT_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
OPENAI_STRICT_KEYWORDS = frozenset(
    {
        "type", "description", "title", "properties", "required", "additionalProperties",
        "items", "enum", "const", "anyOf", "pattern", "format", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems", "maxItems",
    }
)  # fmt: skip
# Gemini FunctionDeclaration.parameters: the fields of the API's Schema object.
GEMINI_KEYWORDS = frozenset(
    {
        "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
        "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
        "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum",
        "maximum",
    }
)  # fmt: skip
GEMINI_TYPES = frozenset({"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT"})
GEMINI_STRING_FORMATS = frozenset({"enum", "date-time"})

# Draft 2020-12 vocabularies (core, applicator, unevaluated, validation, meta-data, format,
# content). Anything else in a schema is an annotation of ours and is dropped on export.
JSON_SCHEMA_KEYWORDS = frozenset(
    {
        "$schema", "$id", "$ref", "$anchor", "$dynamicRef", "$dynamicAnchor", "$vocabulary",
        "$comment", "$defs", "definitions", "allOf", "anyOf", "oneOf", "not", "if", "then",
        "else", "dependentSchemas", "prefixItems", "items", "contains", "properties",
        "patternProperties", "additionalProperties", "propertyNames", "unevaluatedItems",
        "unevaluatedProperties", "type", "enum", "const", "multipleOf", "maximum",
        "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern",
        "maxItems", "minItems", "uniqueItems", "maxContains", "minContains", "maxProperties",
        "minProperties", "required", "dependentRequired", "title", "description", "default",
        "deprecated", "readOnly", "writeOnly", "examples", "format", "contentEncoding",
        "contentMediaType", "contentSchema",
    }
)  # fmt: skip

# Where subschemas live, by keyword: a single schema, a list of schemas, or a name → schema map.
_ONE = ("additionalProperties", "items", "not", "if", "then", "else", "contains",
        "propertyNames", "unevaluatedItems", "unevaluatedProperties", "contentSchema")  # fmt: skip
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAP = ("properties", "patternProperties", "dependentSchemas", "$defs", "definitions")

_JSON_OBJECT_HINT = 'A JSON object, written as a string, e.g. "{\\"key\\": \\"value\\"}".'
_JSON_ARRAY_HINT = "A JSON array, written as a string."
_JSON_VALUE_HINT = (
    "Any JSON value, written as a string of JSON (e.g. '\"text\"', '42', '{\"a\": 1}')."
)


class ExportableTool(Protocol):
    """What :func:`export_tool` needs of a tool (``BaseTool`` has it)."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def parameters(self) -> dict[str, Any]: ...


# -- preparation: one self-contained schema ------------------------------------------------


def inline_refs(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of *schema* with every local ``$ref`` replaced by its target, ``$defs`` dropped.

    Keywords next to a ``$ref`` (a description, a default) are kept and win over the
    target's. ``allOf`` with one member (pydantic's way to describe a referenced model) is
    merged into its parent.

    Raises:
        SchemaConversionError: A reference is recursive, remote, or does not resolve.
    """
    root = copy.deepcopy(dict(schema))

    def resolve(ref: str) -> Any:
        if not ref.startswith("#"):
            raise SchemaConversionError(f"Only local $refs can be inlined, not {ref[:100]!r}")
        node: Any = root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise SchemaConversionError(f"$ref {ref[:100]!r} does not resolve")
            node = node[part]
        return node

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
            target = resolve(ref)
            if not isinstance(target, dict):
                raise SchemaConversionError(f"$ref {ref[:100]!r} does not point to a schema")
            node = {**target, **node}
        members = node.get("allOf")
        if isinstance(members, list) and len(members) == 1 and isinstance(members[0], dict):
            del node["allOf"]
            node = {**walk(members[0], stack), **node}
        return _map_subschemas(node, lambda child: walk(child, stack))

    result: dict[str, Any] = walk(root, ())
    result.pop("$defs", None)
    result.pop("definitions", None)
    return result


def _map_subschemas(node: dict[str, Any], fn: Callable[[Any], Any]) -> dict[str, Any]:
    """*node* with *fn* applied to each direct subschema (never to data such as enum values)."""
    out = dict(node)
    for key in _ONE:
        if isinstance(out.get(key), dict):
            out[key] = fn(out[key])
    for key in _LIST:
        if isinstance(out.get(key), list):
            out[key] = [fn(s) for s in out[key]]
    if isinstance(out.get("items"), list):  # draft-04 tuple form
        out["items"] = [fn(s) for s in out["items"]]
    for key in _MAP:
        if isinstance(out.get(key), dict):
            out[key] = {name: fn(s) for name, s in out[key].items()}
    return out


def _merge_all_of(node: dict[str, Any]) -> dict[str, Any]:
    """Fold an ``allOf`` of object schemas into one object (strict mode and Gemini lack allOf)."""
    members = node.get("allOf")
    if not isinstance(members, list):
        return node
    merged = {k: v for k, v in node.items() if k != "allOf"}
    for member in members:
        if not isinstance(member, dict):
            raise SchemaConversionError("allOf with boolean members cannot be converted")
        member = _merge_all_of(member)
        for key, value in member.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
            elif key in merged and merged[key] != value and key not in ("title", "description"):
                raise SchemaConversionError(f"allOf members disagree on {key!r}; cannot merge")
            else:
                merged.setdefault(key, value)
    return merged


# -- what a schema node is -----------------------------------------------------------------


def _types(node: Mapping[str, Any]) -> list[str]:
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


def _is_free_object(node: Mapping[str, Any]) -> bool:
    """An object whose keys are not declared: a map, or any object at all."""
    return not node.get("properties")


def _is_any(node: Any) -> bool:
    """A schema that says nothing about the value's type (``{}``, ``true``, annotations only)."""
    if node is True:
        return True
    if not isinstance(node, dict):
        return False
    return not (
        _types(node) or any(k in node for k in ("anyOf", "oneOf", "allOf", "enum", "const", "not"))
    )


def _allows_null(node: Any) -> bool:
    if _is_any(node):
        return True
    if not isinstance(node, dict):
        return False
    if "null" in _types(node) or (isinstance(node.get("enum"), list) and None in node["enum"]):
        return True
    if "const" in node and node["const"] is None:
        return True
    return any(_allows_null(s) for s in node.get("anyOf", []) + node.get("oneOf", []))


def _non_null_branches(node: Mapping[str, Any]) -> list[Any]:
    branches = node.get("anyOf", node.get("oneOf", []))
    return [
        b for b in branches if not (isinstance(b, dict) and _types(b) == ["null"] and len(b) <= 2)
    ]


def _with_description(node: dict[str, Any], *notes: str) -> dict[str, Any]:
    """*node* with *notes* appended to its description, as sentences."""
    parts = [p.strip() for p in (node.get("description", ""), *notes) if p and p.strip()]
    if parts:
        node["description"] = " ".join(
            p if p.endswith((".", "!", "?", ":")) or i == len(parts) - 1 else p + "."
            for i, p in enumerate(parts)
        )
    return node


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _annotations(node: Mapping[str, Any], *, keep_default: bool) -> dict[str, Any]:
    """The description of *node*, with ``default`` folded in when it cannot be kept."""
    out: dict[str, Any] = {}
    if isinstance(node.get("description"), str) and node["description"]:
        out["description"] = node["description"]
    if "default" in node and not keep_default and node["default"] is not None:
        _with_description(out, f"Default: {_json_text(node['default'])}.")
    return out


# -- plain JSON Schema (openai, anthropic, mcp) --------------------------------------------


def to_json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A self-contained, standard JSON Schema object: ``$ref`` s inlined, our annotations gone.

    This is the shape OpenAI (non-strict), Anthropic and MCP accept.
    """
    prepared = inline_refs(schema)

    def clean(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        node = {k: v for k, v in node.items() if k in JSON_SCHEMA_KEYWORDS}
        return _map_subschemas(node, clean)

    result: dict[str, Any] = clean(prepared)
    if "object" not in _types(result):
        raise SchemaConversionError("A tool's input schema must be a JSON object schema")
    result["type"] = "object"
    result.setdefault("properties", {})
    return result


def to_anthropic(schema: Mapping[str, Any]) -> dict[str, Any]:
    """An Anthropic tool ``input_schema`` (JSON Schema, ``type: object`` at the root)."""
    return to_json_schema(schema)


def to_openai(schema: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI function ``parameters`` without strict mode (JSON Schema, object root)."""
    return to_json_schema(schema)


# -- OpenAI strict mode ----------------------------------------------------------------------


def to_openai_strict(schema: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI strict-mode ``parameters``: closed objects, all properties required.

    Optional properties become nullable (send ``null`` to omit); free-form objects and
    untyped values become JSON-in-a-string; unsupported keywords move into descriptions.

    Raises:
        SchemaConversionError: The schema is recursive, or its root is not an object with
            declared properties (an open root cannot be closed without losing everything).
    """
    prepared = _merge_all_of(inline_refs(schema))
    if "object" not in _types(prepared):
        raise SchemaConversionError("A tool's input schema must be a JSON object schema")
    if "properties" not in prepared and prepared.get("additionalProperties", True) is not False:
        raise SchemaConversionError(
            "Strict mode needs the root object's properties declared; this one accepts any object"
        )
    return _strict_object(prepared)


def _strict_object(node: Mapping[str, Any]) -> dict[str, Any]:
    out = _annotations(node, keep_default=False)
    properties = node.get("properties") or {}
    required = set(node.get("required", []))
    out["type"] = "object"
    out["properties"] = {
        name: _strict(sub, optional=name not in required) for name, sub in properties.items()
    }
    out["required"] = list(properties)
    out["additionalProperties"] = False
    return out


def _strict(node: Any, *, optional: bool = False) -> dict[str, Any]:
    result = _strict_value(node)
    if optional:
        result = _nullable(result)
    return result


def _strict_value(node: Any) -> dict[str, Any]:
    if not isinstance(node, dict) or _is_any(node):
        base = node if isinstance(node, dict) else {}
        return _with_description(
            {**_annotations(base, keep_default=False), "type": "string"}, _JSON_VALUE_HINT
        )
    node = _merge_all_of(node)
    if "const" in node:
        node = {**{k: v for k, v in node.items() if k != "const"}, "enum": [node["const"]]}
    branches = node.get("anyOf", node.get("oneOf"))
    if isinstance(branches, list):
        out = _annotations(node, keep_default=False)
        converted = [_strict_value(b) for b in branches]
        if len(converted) == 1:
            return {**converted[0], **out}
        out["anyOf"] = converted
        return out
    types = _types(node)
    if not types and isinstance(node.get("enum"), list):
        types = sorted({_json_type(v) for v in node["enum"]})
    if len(types) > 1:
        nullable = "null" in types
        rest = [t for t in types if t != "null"]
        if len(rest) == 1:
            single = _strict_value({**node, "type": rest[0]})
            return _nullable(single) if nullable else single
        out = _annotations(node, keep_default=False)
        out["anyOf"] = [_strict_value({**_type_keywords(node, t), "type": t}) for t in rest]
        return _nullable(out) if nullable else out
    kind = types[0]
    out = _annotations(node, keep_default=False)
    if kind == "object":
        if _is_free_object(node):
            return _with_description({**out, "type": "string"}, _JSON_OBJECT_HINT)
        return _strict_object(node)
    if kind == "array":
        items = node.get("items")
        if "prefixItems" in node or isinstance(items, list):
            return _with_description({**out, "type": "string"}, _JSON_ARRAY_HINT)
        out["type"] = "array"
        out["items"] = _strict_value(items if items is not None else {})
        for key in ("minItems", "maxItems"):
            if key in node:
                out[key] = node[key]
        if node.get("uniqueItems"):
            _with_description(out, "Items must be unique.")
        return out
    out["type"] = kind
    if isinstance(node.get("enum"), list):
        out["enum"] = list(node["enum"])
    if kind == "string":
        if "pattern" in node:
            out["pattern"] = node["pattern"]
        fmt = node.get("format")
        if fmt in OPENAI_STRICT_FORMATS:
            out["format"] = fmt
        elif isinstance(fmt, str):
            _with_description(out, f"Format: {fmt}.")
        _with_description(out, *_length_notes(node))
    elif kind in ("number", "integer"):
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
            if key in node:
                out[key] = node[key]
    return out


def _type_keywords(node: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The keywords of a multi-type node that apply to one of its types."""
    keep = {
        "string": ("pattern", "format", "minLength", "maxLength", "enum"),
        "number": (
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "multipleOf",
            "enum",
        ),
        "integer": (
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "multipleOf",
            "enum",
        ),
        "array": ("items", "prefixItems", "minItems", "maxItems", "uniqueItems"),
        "object": ("properties", "required", "additionalProperties"),
    }.get(kind, ())
    return {k: node[k] for k in keep if k in node}


def _length_notes(node: Mapping[str, Any]) -> list[str]:
    low, high = node.get("minLength"), node.get("maxLength")
    if low is not None and high is not None:
        return [f"Between {low} and {high} characters."]
    if high is not None:
        return [f"At most {high} characters."]
    if low is not None:
        return [f"At least {low} characters."]
    return []


def _json_type(value: Any) -> str:
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


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    """*node* also accepting ``null`` (strict mode's spelling of an optional field)."""
    out = dict(node)
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


# -- Gemini ----------------------------------------------------------------------------------


def to_gemini(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A Gemini ``FunctionDeclaration.parameters`` schema (OpenAPI 3.0 subset).

    An object with no properties at all (a tool without arguments) must be left out of the
    declaration; :func:`export_tool` does that.

    Raises:
        SchemaConversionError: The schema is recursive or not an object schema.
    """
    prepared = _merge_all_of(inline_refs(schema))
    if "object" not in _types(prepared):
        raise SchemaConversionError("A tool's input schema must be a JSON object schema")
    return _gemini_object(prepared)


def _gemini_object(node: Mapping[str, Any]) -> dict[str, Any]:
    out = _annotations(node, keep_default=False)
    properties = node.get("properties") or {}
    out["type"] = "OBJECT"
    out["properties"] = {name: _gemini(sub) for name, sub in properties.items()}
    required = [name for name in node.get("required", []) if name in properties]
    if required:
        out["required"] = required
    for key in ("minProperties", "maxProperties"):
        if key in node:
            out[key] = node[key]
    return out


def _gemini(node: Any) -> dict[str, Any]:
    if not isinstance(node, dict) or _is_any(node):
        base = node if isinstance(node, dict) else {}
        out = {**_annotations(base, keep_default=False), "type": "STRING"}
        return _with_description(out, _JSON_VALUE_HINT)
    node = _merge_all_of(node)
    if "const" in node:
        node = {**{k: v for k, v in node.items() if k != "const"}, "enum": [node["const"]]}
    branches = node.get("anyOf", node.get("oneOf"))
    if isinstance(branches, list):
        nullable = _allows_null({"anyOf": branches})
        members = [_gemini(b) for b in _non_null_branches(node)]
        annotations = _annotations(node, keep_default=False)
        if len(members) == 1:
            out = {**members[0], **annotations}
        elif not members:
            out = {**annotations, "type": "STRING"}
        else:
            out = {**annotations, "anyOf": members}
        if nullable:
            out["nullable"] = True
        return out
    types = _types(node)
    if not types and isinstance(node.get("enum"), list):
        types = sorted({_json_type(v) for v in node["enum"] if v is not None}) or ["null"]
    nullable = "null" in types or (isinstance(node.get("enum"), list) and None in node["enum"])
    rest = [t for t in types if t != "null"]
    if len(rest) > 1:
        out = _annotations(node, keep_default=False)
        out["anyOf"] = [_gemini({**_type_keywords(node, t), "type": t}) for t in rest]
    elif not rest:
        out = _with_description(
            {**_annotations(node, keep_default=False), "type": "STRING"}, "Always null."
        )
        nullable = True
    else:
        out = _gemini_typed(node, rest[0])
    if nullable:
        out["nullable"] = True
    return out


def _gemini_typed(node: Mapping[str, Any], kind: str) -> dict[str, Any]:
    default = node.get("default")
    default_type = _json_type(default)
    keep_default = kind in ("string", "number", "integer", "boolean") and (
        default_type == kind or (kind, default_type) == ("number", "integer")
    )
    out = _annotations(node, keep_default=keep_default)
    if keep_default:
        out["default"] = default
    if kind == "object":
        if _is_free_object(node):
            return _with_description({**out, "type": "STRING"}, _JSON_OBJECT_HINT)
        nested = _gemini_object(node)
        return {**nested, **{k: v for k, v in out.items() if k != "default"}}
    if kind == "array":
        items = node.get("items")
        if "prefixItems" in node or isinstance(items, list) or items is None:
            return _with_description({**out, "type": "STRING"}, _JSON_ARRAY_HINT)
        out["type"] = "ARRAY"
        out["items"] = _gemini(items)
        for key in ("minItems", "maxItems"):
            if key in node:
                out[key] = node[key]
        return out
    out["type"] = kind.upper()
    values = node.get("enum")
    if isinstance(values, list):
        values = [v for v in values if v is not None]
        if kind == "string" and all(isinstance(v, str) for v in values):
            out["format"] = "enum"
            out["enum"] = values
        else:
            _with_description(out, f"One of: {', '.join(_json_text(v) for v in values)}.")
    if kind == "string":
        for key in ("minLength", "maxLength", "pattern"):
            if key in node:
                out[key] = node[key]
        fmt = node.get("format")
        if fmt in GEMINI_STRING_FORMATS and "enum" not in out:
            out["format"] = fmt
        elif isinstance(fmt, str) and fmt != "enum":
            _with_description(out, f"Format: {fmt}.")
    elif kind in ("number", "integer"):
        for key in ("minimum", "maximum"):
            if key in node:
                out[key] = node[key]
        if "exclusiveMinimum" in node:
            _with_description(out, f"Greater than {node['exclusiveMinimum']}.")
        if "exclusiveMaximum" in node:
            _with_description(out, f"Less than {node['exclusiveMaximum']}.")
        if "multipleOf" in node:
            _with_description(out, f"A multiple of {node['multipleOf']}.")
    return out


# -- arguments: provider shape <-> original shape ------------------------------------------


def _encoded_as_string(node: Any) -> bool:
    """Whether strict mode and Gemini send this node's value as a JSON string."""
    if not isinstance(node, dict) or _is_any(node):
        return True
    node = _merge_all_of(node)
    if "anyOf" in node or "oneOf" in node or "enum" in node or "const" in node:
        return False
    types = [t for t in _types(node) if t != "null"]
    if types == ["object"]:
        return _is_free_object(node)
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
    node = _merge_all_of(node)
    branches = node.get("anyOf", node.get("oneOf"))
    if isinstance(branches, list):
        for branch in _non_null_branches(node):
            if _matches_kind(branch, value):
                return _restore(branch, value)
        return value
    if isinstance(value, dict) and node.get("properties"):
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
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [_restore(node["items"], v) for v in value]
    return value


def _omit_null(node: Any) -> bool:
    if not isinstance(node, dict):
        return False
    return not _allows_null(node) or node.get("default", None) is None


def _matches_kind(node: Any, value: Any) -> bool:
    if not isinstance(node, dict) or _is_any(node):
        return True
    if isinstance(value, str) and _encoded_as_string(node):
        return True
    kinds = _types(node)
    if not kinds:
        return True
    actual = _json_type(value)
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
    node = _merge_all_of(node)
    branches = node.get("anyOf", node.get("oneOf"))
    if isinstance(branches, list):
        for branch in _non_null_branches(node):
            if _matches_kind(branch, value) and value is not None:
                return _encode(branch, value, fill_nulls=fill_nulls)
        return value
    if isinstance(value, dict) and node.get("properties"):
        out = {
            name: _encode(node["properties"][name], item, fill_nulls=fill_nulls)
            if name in node["properties"]
            else item
            for name, item in value.items()
        }
        if fill_nulls:
            for name in node["properties"]:
                out.setdefault(name, None)
            out = {name: out[name] for name in [*node["properties"], *value] if name in out}
        return out
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [_encode(node["items"], v, fill_nulls=fill_nulls) for v in value]
    return value


# -- dispatch: schemas and tools by format -------------------------------------------------

_SCHEMA_CONVERTERS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "openai": to_openai,
    "anthropic": to_anthropic,
    "mcp": to_json_schema,
    "openai-strict": to_openai_strict,
    "gemini": to_gemini,
}


def _check_format(fmt: str) -> None:
    if fmt not in TOOL_FORMATS:
        raise InvalidInputError(
            f"Unknown tool format {fmt!r}; use one of: {', '.join(TOOL_FORMATS)}"
        )


def convert_schema(schema: Mapping[str, Any], fmt: str) -> dict[str, Any]:
    """*schema* (a tool's parameters or a block's input schema) in the dialect of *fmt*."""
    _check_format(fmt)
    return _SCHEMA_CONVERTERS[fmt](schema)


def export_tool(tool: ExportableTool, fmt: str) -> dict[str, Any]:
    """One tool definition as *fmt* expects it.

    ``openai`` / ``openai-strict``: a Chat Completions ``{"type": "function", "function":
    {...}}`` entry (strict adds ``"strict": true``); ``anthropic``: ``{"name",
    "description", "input_schema"}``; ``gemini``: a ``FunctionDeclaration`` (put a list of
    them under ``tools[].functionDeclarations``); ``mcp``: ``{"name", "description",
    "inputSchema"}``.
    """
    _check_format(fmt)
    schema = _SCHEMA_CONVERTERS[fmt](tool.parameters)
    if fmt in ("openai", "openai-strict"):
        function: dict[str, Any] = {
            "name": tool.name,
            "description": tool.description,
            "parameters": schema,
        }
        if fmt == "openai-strict":
            function["strict"] = True
        return {"type": "function", "function": function}
    if fmt == "anthropic":
        return {"name": tool.name, "description": tool.description, "input_schema": schema}
    if fmt == "gemini":
        declaration: dict[str, Any] = {"name": tool.name, "description": tool.description}
        if schema.get("properties"):
            declaration["parameters"] = schema
        return declaration
    return _mcp_tool(tool, schema)


def _mcp_tool(tool: ExportableTool, schema: dict[str, Any]) -> dict[str, Any]:
    """The MCP ``Tool`` (what ``tools/list`` answers, ``docs/mcp.md``): name, title,
    description, input and output schema, and annotations from the tool's hints."""
    entry: dict[str, Any] = {"name": tool.name}
    title = getattr(tool, "title", None)
    if title:
        entry["title"] = title
    entry |= {"description": tool.description, "inputSchema": schema}
    hints = None if isinstance(tool, type) else getattr(tool, "hints", None)
    if callable(hints):  # a blockpilot tool (BaseTool): it answers with a tool response
        entry["outputSchema"] = copy.deepcopy(RESPONSE_OUTPUT_SCHEMA)
        entry["annotations"] = {**({"title": title} if title else {}), **hints().as_mcp()}
    return entry


def export_tools(tools: Iterable[ExportableTool], fmt: str) -> list[dict[str, Any]]:
    """Every tool of *tools* in format *fmt* (see :func:`export_tool`)."""
    _check_format(fmt)
    return [export_tool(t, fmt) for t in tools]


__all__ = [
    "GEMINI_KEYWORDS",
    "GEMINI_TYPES",
    "JSON_SCHEMA_KEYWORDS",
    "OPENAI_STRICT_FORMATS",
    "OPENAI_STRICT_KEYWORDS",
    "TOOL_FORMATS",
    "SchemaConversionError",
    "ToolFormat",
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
