"""Tool and block schemas in each LLM provider's dialect, checked against the providers'
documented constraints by small independent validators, and still accepting valid input."""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from blockpilot.blocks.registry import BlockRegistry
from blockpilot.errors import InvalidInputError
from blockpilot.tools.find_block import FindBlockTool
from blockpilot.tools.run_block import RunBlockTool
from blockpilot.tools.schemas import (
    SchemaConversionError,
    convert_schema,
    encode_arguments,
    export_tool,
    export_tools,
    inline_refs,
    restore_arguments,
    to_anthropic,
    to_gemini,
    to_openai_strict,
)

# -- the providers' documented constraints, written down independently of the code ----------

# OpenAI Structured Outputs "Supported schemas" (strict mode).
OPENAI_STRICT_ALLOWED = {
    "type", "description", "title", "properties", "required", "additionalProperties", "items",
    "enum", "const", "anyOf", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "minItems", "maxItems",
}  # fmt: skip
OPENAI_STRICT_TYPES = {"string", "number", "integer", "boolean", "object", "array", "null"}
OPENAI_STRICT_FORMATS = {
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
}
OPENAI_MAX_DEPTH, OPENAI_MAX_PROPERTIES, OPENAI_MAX_ENUM_VALUES = 10, 5000, 1000

# Gemini FunctionDeclaration.parameters: the API's Schema object (OpenAPI 3.0 subset).
GEMINI_ALLOWED = {
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
}  # fmt: skip
GEMINI_TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT"}
GEMINI_FORMATS = {
    "STRING": {"enum", "date-time"},
    "NUMBER": {"float", "double"},
    "INTEGER": {"int32", "int64"},
}

# JSON Schema 2020-12 vocabulary: what Anthropic's input_schema (and MCP's inputSchema) is.
JSON_SCHEMA_VOCABULARY = {
    "$schema", "$id", "$anchor", "$comment", "allOf", "anyOf", "oneOf", "not", "if", "then",
    "else", "dependentSchemas", "prefixItems", "items", "contains", "properties",
    "patternProperties", "additionalProperties", "propertyNames", "unevaluatedItems",
    "unevaluatedProperties", "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum",
    "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
    "uniqueItems", "maxContains", "minContains", "maxProperties", "minProperties", "required",
    "dependentRequired", "title", "description", "default", "deprecated", "readOnly",
    "writeOnly", "examples", "format", "contentEncoding", "contentMediaType", "contentSchema",
}  # fmt: skip
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def openai_strict_problems(schema: Any) -> list[str]:
    problems: list[str] = []
    if not isinstance(schema, dict) or schema.get("type") != "object" or "anyOf" in schema:
        return ["root must be a plain object schema (not anyOf)"]
    totals = {"properties": 0, "enum": 0}

    def walk(node: Any, path: str, depth: int) -> None:
        if not isinstance(node, dict):
            problems.append(f"{path}: boolean schemas are not supported")
            return
        extra = set(node) - OPENAI_STRICT_ALLOWED
        if extra:
            problems.append(f"{path}: unsupported keywords {sorted(extra)}")
        types = _as_list(node.get("type")) if "type" in node else []
        if not types and "anyOf" not in node and "enum" not in node and "const" not in node:
            problems.append(f"{path}: no type")
        for t in types:
            if t not in OPENAI_STRICT_TYPES:
                problems.append(f"{path}: type {t!r}")
        if "object" in types:
            if depth > OPENAI_MAX_DEPTH:
                problems.append(f"{path}: nested deeper than {OPENAI_MAX_DEPTH}")
            if node.get("additionalProperties") is not False:
                problems.append(f"{path}: object without additionalProperties: false")
            props = node.get("properties")
            if not isinstance(props, dict):
                problems.append(f"{path}: object without properties")
                props = {}
            if sorted(node.get("required", [])) != sorted(props):
                problems.append(f"{path}: required != all properties")
            totals["properties"] += len(props)
            for name, sub in props.items():
                walk(sub, f"{path}.{name}", depth + 1)
        if "format" in node and node["format"] not in OPENAI_STRICT_FORMATS:
            problems.append(f"{path}: format {node['format']!r}")
        if "enum" in node:
            totals["enum"] += len(node["enum"])
            if "null" in types and None not in node["enum"]:
                problems.append(f"{path}: nullable enum without null")
        if "items" in node:
            walk(node["items"], f"{path}[]", depth)
        for i, branch in enumerate(node.get("anyOf", [])):
            walk(branch, f"{path}|{i}", depth)

    walk(schema, "$", 1)
    if totals["properties"] > OPENAI_MAX_PROPERTIES:
        problems.append("too many properties")
    if totals["enum"] > OPENAI_MAX_ENUM_VALUES:
        problems.append("too many enum values")
    return problems


def gemini_problems(schema: Any) -> list[str]:
    problems: list[str] = []

    def walk(node: Any, path: str, root: bool = False) -> None:
        if not isinstance(node, dict):
            problems.append(f"{path}: not a Schema object")
            return
        extra = set(node) - GEMINI_ALLOWED
        if extra:
            problems.append(f"{path}: unsupported fields {sorted(extra)}")
        kind = node.get("type")
        if kind is None and "anyOf" not in node:
            problems.append(f"{path}: no type")
        if kind is not None and kind not in GEMINI_TYPES:
            problems.append(f"{path}: type {kind!r} is not a Gemini Type")
        if "nullable" in node and not isinstance(node["nullable"], bool):
            problems.append(f"{path}: nullable must be a boolean")
        if kind == "OBJECT":
            props = node.get("properties")
            if not isinstance(props, dict) or (not props and not root):
                problems.append(f"{path}: OBJECT needs non-empty properties")
                props = {}
            if not set(node.get("required", [])) <= set(props):
                problems.append(f"{path}: required names unknown properties")
            for name, sub in props.items():
                walk(sub, f"{path}.{name}")
        if kind == "ARRAY":
            if "items" not in node:
                problems.append(f"{path}: ARRAY needs items")
            else:
                walk(node["items"], f"{path}[]")
        if "enum" in node and (
            kind != "STRING" or not all(isinstance(v, str) for v in node["enum"])
        ):
            problems.append(f"{path}: enum is only for STRING values")
        if "format" in node and node["format"] not in GEMINI_FORMATS.get(kind, set()):
            problems.append(f"{path}: format {node['format']!r} for {kind}")
        for i, branch in enumerate(node.get("anyOf", [])):
            walk(branch, f"{path}|{i}")

    if not isinstance(schema, dict) or schema.get("type") != "OBJECT":
        return ["root must be an OBJECT"]
    walk(schema, "$", root=True)
    return problems


def anthropic_problems(schema: Any) -> list[str]:
    problems: list[str] = []
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return ["input_schema must have type: object at the root"]
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        problems.append(f"not valid JSON Schema: {exc.message}")

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        extra = set(node) - JSON_SCHEMA_VOCABULARY
        if extra:
            problems.append(f"{path}: non-standard keywords {sorted(extra)}")
        for key in ("items", "additionalProperties", "not", "contains"):
            if isinstance(node.get(key), dict):
                walk(node[key], f"{path}.{key}")
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            for i, sub in enumerate(node.get(key, [])):
                walk(sub, f"{path}.{key}[{i}]")
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{name}")

    walk(schema, "$")
    if "$ref" in json.dumps(schema) or "$defs" in json.dumps(schema):
        problems.append("$ref/$defs left in the schema")
    return problems


def gemini_as_json_schema(node: Any) -> Any:
    """Read a Gemini Schema as JSON Schema, to validate instances against it."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type":
            out["type"] = value.lower()
        elif key == "properties":
            out["properties"] = {k: gemini_as_json_schema(v) for k, v in value.items()}
        elif key == "items":
            out["items"] = gemini_as_json_schema(value)
        elif key == "anyOf":
            out["anyOf"] = [gemini_as_json_schema(v) for v in value]
        elif key not in ("nullable", "format", "propertyOrdering", "example"):
            out[key] = value
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        if "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    return out


# -- example inputs, generated from the original schema --------------------------------------


def example(schema: Any, *, full: bool) -> Any:
    """A valid instance of *schema*: required properties only, or every property."""
    node = schema if isinstance(schema, dict) else {}
    if "default" in node and full and node["default"] is not None:
        return copy.deepcopy(node["default"])
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return next(v for v in node["enum"] if v is not None)
    if "anyOf" in node:
        branch = next(b for b in node["anyOf"] if b.get("type") != "null")
        return example(branch, full=full)
    kind = node.get("type")
    kind = next((t for t in kind if t != "null"), None) if isinstance(kind, list) else kind
    if kind == "object" or "properties" in node:
        props = node.get("properties") or {}
        if not props:
            values = node.get("additionalProperties")
            if isinstance(values, dict):
                return {"key": example(values, full=full)}
            return {"key": "value", "n": 1}
        wanted = props if full else [n for n in props if n in node.get("required", [])]
        return {name: example(props[name], full=full) for name in wanted}
    if kind == "array":
        return [example(node.get("items", {}), full=full)]
    if kind == "string":
        if node.get("format") == "email":
            return "someone@example.com"
        return "example text"[: node.get("maxLength", 100)]
    if kind == "integer":
        return max(node.get("minimum", 2), 1)
    if kind == "number":
        return max(node.get("minimum", 2.5), 0.5)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return {"any": ["json", 1]}  # untyped


def _block_schemas() -> list[tuple[str, dict[str, Any]]]:
    return [(block.name, block.Input.jsonschema()) for block in BlockRegistry().all()]


class Address(BaseModel):
    street: str = Field(description="Street and number")
    city: str = Field(max_length=80)


class Contact(BaseModel):
    name: str = Field(description="Full name")
    kind: Literal["person", "company"] = "person"
    address: Address = Field(description="Where they live")
    previous: list[Address] = Field(default_factory=list)
    note: str | None = None
    score: float | int = 1
    extra: dict[str, Any] = Field(default_factory=dict)


SCHEMAS: list[tuple[str, dict[str, Any]]] = [
    ("find_block", FindBlockTool.parameters),
    ("run_block", RunBlockTool.parameters),
    ("pydantic-with-refs", Contact.model_json_schema()),
    *_block_schemas(),
]
IDS = [name for name, _ in SCHEMAS]


def test_every_builtin_block_is_covered() -> None:
    names = {name for name, _ in SCHEMAS}
    assert {b.name for b in BlockRegistry().all()} <= names
    assert len(BlockRegistry().all()) >= 10


@pytest.mark.parametrize(("name", "schema"), SCHEMAS, ids=IDS)
def test_openai_strict_meets_strict_mode_constraints(name: str, schema: dict[str, Any]) -> None:
    converted = to_openai_strict(schema)
    assert openai_strict_problems(converted) == []
    jsonschema.Draft202012Validator.check_schema(converted)


@pytest.mark.parametrize(("name", "schema"), SCHEMAS, ids=IDS)
def test_gemini_meets_function_declaration_constraints(name: str, schema: dict[str, Any]) -> None:
    assert gemini_problems(to_gemini(schema)) == []


@pytest.mark.parametrize(("name", "schema"), SCHEMAS, ids=IDS)
@pytest.mark.parametrize("fmt", ["anthropic", "openai", "mcp"])
def test_plain_json_schema_formats_are_standard_and_self_contained(
    name: str, schema: dict[str, Any], fmt: str
) -> None:
    assert anthropic_problems(convert_schema(schema, fmt)) == []


@pytest.mark.parametrize("full", [False, True], ids=["required-only", "every-field"])
@pytest.mark.parametrize(("name", "schema"), SCHEMAS, ids=IDS)
def test_converted_schemas_accept_a_valid_input_and_round_trip(
    name: str, schema: dict[str, Any], full: bool
) -> None:
    original = inline_refs(schema)
    instance = example(original, full=full)
    jsonschema.validate(instance, schema)  # the example really is valid input

    for fmt in ("anthropic", "openai", "mcp"):
        jsonschema.validate(encode_arguments(schema, instance, fmt), convert_schema(schema, fmt))

    strict = encode_arguments(schema, instance, "openai-strict")
    jsonschema.validate(strict, to_openai_strict(schema))
    assert set(strict) == set(original.get("properties", {}))  # every field present
    assert restore_arguments(schema, strict) == instance

    gemini = encode_arguments(schema, instance, "gemini")
    jsonschema.validate(gemini, gemini_as_json_schema(to_gemini(schema)))
    assert restore_arguments(schema, gemini) == instance


def test_strict_mode_makes_optional_fields_nullable_and_closes_objects() -> None:
    converted = to_openai_strict(Contact.model_json_schema())
    assert converted["required"] == list(converted["properties"])
    assert converted["properties"]["name"]["type"] == "string"  # required stays non-null
    assert converted["properties"]["kind"]["enum"] == ["person", "company", None]
    assert 'Default: "person".' in converted["properties"]["kind"]["description"]
    address = converted["properties"]["address"]
    assert address["additionalProperties"] is False and address["required"] == ["street", "city"]
    assert "80 characters" in address["properties"]["city"]["description"]
    assert converted["properties"]["previous"]["items"]["additionalProperties"] is False
    # a free-form map cannot be closed: it travels as JSON in a string
    assert converted["properties"]["extra"]["type"] == ["string", "null"]
    assert "$ref" not in json.dumps(converted) and "$defs" not in json.dumps(converted)


def test_run_block_input_data_travels_as_json_text_in_strict_mode() -> None:
    params = RunBlockTool.parameters
    model_arguments = {"block_id": "b", "input_data": '{"to_email": "a@b.c"}', "dry_run": None}
    assert restore_arguments(params, model_arguments) == {
        "block_id": "b",
        "input_data": {"to_email": "a@b.c"},
    }
    # not JSON: passed on as it is, so run_block reports "input_data must be an object"
    assert (
        restore_arguments(params, {"block_id": "b", "input_data": "nope"})["input_data"] == "nope"
    )


def test_gemini_uses_openapi_types_nullable_and_string_enums() -> None:
    converted = to_gemini(Contact.model_json_schema())
    props = converted["properties"]
    assert converted["type"] == "OBJECT" and converted["required"] == ["name", "address"]
    assert props["note"] == {"type": "STRING", "nullable": True}
    assert props["kind"]["enum"] == ["person", "company"] and props["kind"]["format"] == "enum"
    assert [b["type"] for b in props["score"]["anyOf"]] == ["NUMBER", "INTEGER"]
    assert props["previous"]["items"]["type"] == "OBJECT"
    assert props["extra"]["type"] == "STRING"  # free-form object: JSON text


def test_recursive_schemas_are_refused_not_looped() -> None:
    class Node(BaseModel):
        value: str
        children: list[Node] = Field(default_factory=list)

    for convert in (to_openai_strict, to_gemini, to_anthropic):
        with pytest.raises(SchemaConversionError, match="Recursive"):
            convert(Node.model_json_schema())


def test_ref_siblings_win_and_remote_refs_are_refused() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A", "description": "outer"}},
        "$defs": {"A": {"type": "string", "description": "inner"}},
    }
    assert inline_refs(schema)["properties"]["a"] == {"type": "string", "description": "outer"}
    with pytest.raises(SchemaConversionError):
        inline_refs({"type": "object", "properties": {"a": {"$ref": "https://x/y.json"}}})
    with pytest.raises(SchemaConversionError):
        to_openai_strict({"type": "object"})  # an open root cannot be closed


@pytest.mark.parametrize("fmt", ["openai", "openai-strict", "anthropic", "gemini", "mcp"])
def test_tools_export_in_every_format(fmt: str) -> None:
    exported = export_tools([FindBlockTool, RunBlockTool], fmt)  # type: ignore[list-item]
    assert len(exported) == 2
    for tool, entry in zip((FindBlockTool, RunBlockTool), exported, strict=True):
        assert entry == export_tool(tool, fmt)  # type: ignore[arg-type]
        if fmt.startswith("openai"):
            function = entry["function"]
            assert entry["type"] == "function" and TOOL_NAME.match(function["name"])
            assert function.get("strict", False) is (fmt == "openai-strict")
            check = openai_strict_problems if fmt == "openai-strict" else anthropic_problems
            assert check(function["parameters"]) == []
        elif fmt == "anthropic":
            assert entry.keys() == {"name", "description", "input_schema"}
            assert anthropic_problems(entry["input_schema"]) == []
        elif fmt == "gemini":
            assert entry.keys() == {"name", "description", "parameters"}
            assert gemini_problems(entry["parameters"]) == []
        else:  # MCP: the tools/list entry (title, and for tool instances outputSchema, hints)
            assert {"name", "description", "inputSchema"} <= entry.keys()
            assert entry.keys() <= {
                "name",
                "title",
                "description",
                "inputSchema",
                "outputSchema",
                "annotations",
            }
        json.dumps(entry)


def test_a_tool_without_arguments_has_no_gemini_parameters() -> None:
    class NoArgs:
        name = "ping"
        description = "Ping"
        parameters: dict[str, Any] = {"type": "object", "properties": {}}

    assert export_tool(NoArgs(), "gemini") == {"name": "ping", "description": "Ping"}
    strict = export_tool(NoArgs(), "openai-strict")["function"]["parameters"]
    assert strict == {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }


@pytest.mark.parametrize("fmt", ["xml", "OpenAI", "", "gemini "])
def test_unknown_format_names_the_known_ones(fmt: str) -> None:
    with pytest.raises(InvalidInputError, match="openai, anthropic, mcp, openai-strict, gemini"):
        convert_schema(FindBlockTool.parameters, fmt)
