"""Typed input and output schemas of blocks, and the JSON Schema derived from them."""

from __future__ import annotations

import copy
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, FiniteFloat, TypeAdapter
from pydantic_core import PydanticCustomError

from blockpilot.credentials.fields import CredentialsFieldInfo, field_info_from_schema_extra
from blockpilot.credentials.models import CredentialsMetaInput


def _not_a_boolean(value: Any) -> Any:
    # Pydantic's lax mode reads true/false as 1/0 for int and float fields; for a block's
    # input that is a mistake the model should hear about, not a number it meant.
    if isinstance(value, bool):
        raise PydanticCustomError(
            "number_type", "Input should be a number, not a boolean (true/false)"
        )
    return value


Number = Annotated[FiniteFloat, BeforeValidator(_not_a_boolean)]
"""A finite number input (ints and floats; ``true``/``false``, ``NaN`` and infinities refused)."""

Integer = Annotated[int, BeforeValidator(_not_a_boolean)]
"""A whole-number input (``true``/``false`` refused, where plain ``int`` reads them as 1/0)."""


def SchemaField(  # noqa: N802 - reads like a type, as pydantic's Field does
    default: Any = ...,
    *,
    description: str,
    title: str | None = None,
    placeholder: str | None = None,
    advanced: bool | None = None,
    secret: bool = False,
    ge: float | None = None,
    le: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    default_factory: Any = None,
    json_schema_extra: dict[str, Any] | None = None,
) -> Any:
    """Declare a documented block field. ``description`` is required: the model reads it."""
    extra: dict[str, Any] = dict(json_schema_extra or {})
    if placeholder is not None:
        extra["placeholder"] = placeholder
    if secret:
        extra["secret"] = True
    extra["advanced"] = (
        advanced if advanced is not None else (default is not ... or default_factory is not None)
    )
    kwargs: dict[str, Any] = {}
    if default_factory is not None:
        kwargs["default_factory"] = default_factory
    else:
        kwargs["default"] = default
    return Field(
        title=title,
        description=description,
        ge=ge,
        le=le,
        min_length=min_length,
        max_length=max_length,
        json_schema_extra=extra,
        **kwargs,
    )


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline ``$ref``s, flatten single-item ``allOf``/``anyOf`` and drop ``$defs``."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                target = walk(copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]]))
                rest = {k: walk(v) for k, v in node.items() if k != "$ref"}
                return {**target, **rest}
            out = {k: walk(v) for k, v in node.items() if k != "$defs"}
            for key in ("allOf", "anyOf", "oneOf"):
                if key in out and isinstance(out[key], list) and len(out[key]) == 1:
                    only = out.pop(key)[0]
                    out = {**only, **out}
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


class BlockSchema(BaseModel):
    """Base of block input and output schemas."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=False)

    @classmethod
    def jsonschema(cls) -> dict[str, Any]:
        """The JSON Schema with ``$ref``s inlined (cached per class; do not mutate)."""
        return _cached_jsonschema(cls)

    @classmethod
    def field_names(cls) -> frozenset[str]:
        """The names of the fields (cached per class)."""
        return _cached_field_names(cls)

    @classmethod
    def credentials_fields(cls) -> dict[str, CredentialsFieldInfo]:
        """Credentials field name → its requirements (cached per class)."""
        return _cached_credentials_fields(cls)

    @classmethod
    def required_fields(cls) -> frozenset[str]:
        """The names of the fields without a default (cached per class)."""
        return _cached_required_fields(cls)

    @classmethod
    def required_input_fields(cls) -> frozenset[str]:
        """Required fields that are not credentials fields (cached per class)."""
        return _cached_required_input_fields(cls)

    @classmethod
    def field_adapter(cls, name: str) -> TypeAdapter[Any]:
        return _cached_field_adapter(cls, name)


class BlockSchemaInput(BlockSchema):
    """Base of a block's ``Input``."""


class BlockSchemaOutput(BlockSchema):
    """Base of a block's ``Output``; the ``error`` pin means the block failed."""

    error: str = SchemaField(default="", description="Error message if the block failed")


@cache
def _cached_jsonschema(cls: type[BlockSchema]) -> dict[str, Any]:
    return _inline_refs(cls.model_json_schema())


# Every run asks for these (run_block's checks, each output pin): a class's fields do not
# change once it is built, and model_fields is a descriptor that costs more than a dict read.
@cache
def _cached_field_names(cls: type[BlockSchema]) -> frozenset[str]:
    return frozenset(cls.model_fields)


@cache
def _cached_required_fields(cls: type[BlockSchema]) -> frozenset[str]:
    return frozenset(name for name, f in cls.model_fields.items() if f.is_required())


@cache
def _cached_required_input_fields(cls: type[BlockSchema]) -> frozenset[str]:
    return cls.required_fields() - cls.credentials_fields().keys()


@cache
def _cached_credentials_fields(cls: type[BlockSchema]) -> dict[str, CredentialsFieldInfo]:
    fields: dict[str, CredentialsFieldInfo] = {}
    for name, info in cls.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        parsed = field_info_from_schema_extra(extra)
        if parsed is not None:
            fields[name] = parsed
    return fields


@cache
def _cached_field_adapter(cls: type[BlockSchema], name: str) -> TypeAdapter[Any]:
    annotation = cls.model_fields[name].annotation
    return TypeAdapter(Any if annotation is None else annotation)


def is_credentials_annotation(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, CredentialsMetaInput)


def get_inputs_from_schema(
    schema: dict[str, Any], exclude_fields: frozenset[str] | set[str] = frozenset()
) -> list[dict[str, Any]]:
    """The inputs of a JSON schema as ``{name, title, type, description, required, default}``."""
    if not isinstance(schema, dict):
        return []
    required = set(schema.get("required", ()))
    inputs = []
    for name, prop in schema.get("properties", {}).items():
        if name in exclude_fields or not isinstance(prop, dict):
            continue
        inputs.append(
            {
                "name": name,
                "title": prop.get("title", name),
                "type": _type_name(prop),
                "description": prop.get("description", ""),
                "required": name in required,
                "default": prop.get("default"),
            }
        )
    return inputs


def _type_name(prop: dict[str, Any]) -> str:
    if "type" in prop:
        return str(prop["type"])
    if "enum" in prop:
        return "string"
    options = [
        p.get("type")
        for p in prop.get("anyOf", [])
        if isinstance(p, dict) and p.get("type") != "null"
    ]
    return str(options[0]) if options else "string"


__all__ = [
    "BlockSchema",
    "BlockSchemaInput",
    "BlockSchemaOutput",
    "Integer",
    "Number",
    "SchemaField",
    "get_inputs_from_schema",
]
