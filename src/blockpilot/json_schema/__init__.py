"""JSON Schemas in the dialects LLM providers accept, from the one schema we define.

Our tools' ``parameters`` and every block's ``Input.jsonschema()`` are ordinary JSON Schema
(draft 2020-12, as pydantic writes it). Providers accept different subsets of it; one
transformer (:class:`SchemaTransformer`, ``_transformer.py``) walks a schema once with a
small subclass per dialect:

``openai`` / ``anthropic`` / ``mcp`` (:class:`JsonSchemaDialect`)
    Plain JSON Schema. We inline ``$ref`` s, drop ``$defs`` and remove blockpilot's own
    annotation keys (``advanced``, ``placeholder``, ``credentials_*``, ``discriminator*``),
    which are not JSON Schema keywords; the root is an object.

``openai-strict`` (:class:`OpenAIStrictDialect`)
    OpenAI function calling / Structured Outputs with ``strict: true``: every object lists
    all its properties in ``required`` and has ``additionalProperties: false``; an optional
    property becomes required-but-nullable; only the documented keyword subset is kept
    (``minLength``/``maxLength``, ``default`` and unknown ``format`` s move into the
    description); ``oneOf`` becomes ``anyOf``; no ``$ref``.

``gemini`` (:class:`GeminiDialect`)
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

    parameters = convert_schema(block.Input.jsonschema(), "openai-strict")
    # ... the model calls it; then, before running the block:
    arguments = restore_arguments(block.Input.jsonschema(), model_arguments)

This package knows JSON Schema only; :mod:`blockpilot.tools.schemas` wraps the tools'
definitions in each format (and re-exports everything here).
"""

from __future__ import annotations

from blockpilot.errors import SchemaConversionError
from blockpilot.json_schema._arguments import encode_arguments, restore_arguments
from blockpilot.json_schema._dialects import (
    DIALECTS,
    SCHEMA_FORMATS,
    SchemaFormat,
    check_format,
    convert_schema,
    to_anthropic,
    to_gemini,
    to_json_schema,
    to_openai,
    to_openai_strict,
)
from blockpilot.json_schema._gemini import GeminiDialect
from blockpilot.json_schema._json_schema import JsonSchemaDialect
from blockpilot.json_schema._openai_strict import OpenAIStrictDialect
from blockpilot.json_schema._refs import inline_refs
from blockpilot.json_schema._transformer import SchemaTransformer, TypedTransformer
from blockpilot.json_schema._vocabulary import (
    GEMINI_KEYWORDS,
    GEMINI_TYPES,
    JSON_SCHEMA_KEYWORDS,
    OPENAI_STRICT_FORMATS,
    OPENAI_STRICT_KEYWORDS,
)

__all__ = [
    "DIALECTS",
    "GEMINI_KEYWORDS",
    "GEMINI_TYPES",
    "JSON_SCHEMA_KEYWORDS",
    "OPENAI_STRICT_FORMATS",
    "OPENAI_STRICT_KEYWORDS",
    "SCHEMA_FORMATS",
    "GeminiDialect",
    "JsonSchemaDialect",
    "OpenAIStrictDialect",
    "SchemaConversionError",
    "SchemaFormat",
    "SchemaTransformer",
    "TypedTransformer",
    "check_format",
    "convert_schema",
    "encode_arguments",
    "inline_refs",
    "restore_arguments",
    "to_anthropic",
    "to_gemini",
    "to_json_schema",
    "to_openai",
    "to_openai_strict",
]
