"""Real, public OpenAPI descriptions become blocks (or skipped operations with a reason).

The descriptions in tests/data/openapi are other people's (see the README there). Every
operation either becomes a block whose input schema the OpenAI-strict, Anthropic and Gemini
converters accept, or is listed as skipped with a reason.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from blockpilot.errors import InvalidInputError, SpecError
from blockpilot.sources.base import SourceOptions, source_block_id, source_kind
from blockpilot.sources.openapi._operations import HTTP_METHODS
from blockpilot.sources.openapi._schema import RECURSION_MARKER
from blockpilot.sources.openapi.block import operation_input_schema
from blockpilot.sources.openapi.kind import operation_details, operation_summaries
from blockpilot.storage.sources import SourceRecord
from blockpilot.tools.schemas import convert_schema

DATA = Path(__file__).parents[1] / "data" / "openapi"
SPECS = {
    "petstore": "petstore3.yaml",
    "box": "box.json",
    "gmaps": "google-maps-platform.yaml",
}
# Counts as of the files checked in (see the README in tests/data/openapi).
EXPECTED = {"petstore": (18, 1), "box": (292, 4), "gmaps": (17, 0)}

_parsed: dict[str, Any] = {}


def parse(name: str, **options: Any) -> Any:
    key = (name, json.dumps(options, sort_keys=True))
    if key not in _parsed:
        text = (DATA / SPECS[name]).read_text(encoding="utf-8")
        _parsed[key] = source_kind("openapi").parse(name, text, SourceOptions(**options))
    return _parsed[key]


def full(parsed: Any) -> list[dict[str, Any]]:
    """The stored operations in full (schemas, parameters, credential placements)."""
    return operation_details(parsed.config)


def operation_count(name: str) -> int:
    text = (DATA / SPECS[name]).read_text(encoding="utf-8")
    from blockpilot.sources.openapi._document import load_document

    document = load_document(text)
    return sum(1 for item in document["paths"].values() for m in item if m in HTTP_METHODS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_operation_is_a_block_or_skipped_with_a_reason(name: str) -> None:
    parsed = parse(name)
    blocks, skipped = EXPECTED[name]
    assert (parsed.blocks, len(parsed.skipped)) == (blocks, skipped)
    assert parsed.blocks + len(parsed.skipped) == operation_count(name)
    assert all(s.reason for s in parsed.skipped)
    for op in full(parsed):
        schema = operation_input_schema(name, op)
        for fmt in ("openai-strict", "anthropic", "gemini"):
            convert_schema(schema, fmt)  # raises if the provider could not take it
        assert op["name"].startswith(f"{name}_")
        assert op["description"]


def test_skipped_reasons_are_specific() -> None:
    reasons = Counter(s.reason for s in parse("box").skipped)
    assert all("multipart" in r or "media type" in r for r in reasons), reasons
    (petstore_skip,) = parse("petstore").skipped
    assert petstore_skip.operation == "uploadFile"
    assert "application/octet-stream" in petstore_skip.reason


def test_effects_follow_the_method() -> None:
    effects = {op["key"]: op["effect"] for op in operation_summaries(parse("petstore").config)}
    assert effects["getPetById"] == "read"
    assert effects["addPet"] == "write"
    assert effects["deletePet"] == "destructive"


def test_security_schemes_become_credential_requirements() -> None:
    ops = {op["key"]: op for op in full(parse("petstore"))}
    assert ops["getPetById"]["auth"]["types"] == ["api_key", "oauth2"]
    assert ops["getPetById"]["auth"]["placements"]["api_key"] == {
        "in": "header",
        "name": "api_key",
        "scheme": "api_key",
    }
    assert ops["findPetsByStatus"]["auth"]["scopes"] == ["read:pets", "write:pets"]
    assert ops["getOrderById"]["auth"] is None  # no security: no credentials
    # deletePet lists the api_key header as a parameter: the credential fills it, not the model
    assert "api_key" not in ops["deletePet"]["input"]["properties"]
    gmaps = full(parse("gmaps"))
    assert {json.dumps(op["auth"]["placements"], sort_keys=True) for op in gmaps} == {
        json.dumps({"api_key": {"in": "query", "name": "key", "scheme": "ApiKeyAuth"}})
    }
    box = parse("box").config
    assert box["oauth2"]["token_url"] == "https://api.box.com/oauth2/token"
    assert box["oauth2"]["authorize_url"] == "https://account.box.com/api/oauth2/authorize"


def test_filters_by_tag_and_operation() -> None:
    by_tag = parse("petstore", include_tags=("store",))
    assert sorted(op["key"] for op in operation_summaries(by_tag.config)) == [
        "deleteOrder",
        "getInventory",
        "getOrderById",
        "placeOrder",
    ]
    by_id = parse("petstore", include_operations=("getPetById", "nope"))
    assert [op["key"] for op in operation_summaries(by_id.config)] == ["getPetById"]
    assert [s.to_dict() for s in by_id.skipped] == [
        {"operation": "nope", "reason": "no such operationId in the description"}
    ]


def test_block_ids_are_stable_and_per_source() -> None:
    assert source_block_id("petstore", "getPetById") == source_block_id("petstore", "getPetById")
    assert source_block_id("petstore", "getPetById") != source_block_id("other", "getPetById")
    record = SourceRecord(
        name="petstore", kind="openapi", spec_text="", config=parse("petstore").config
    )
    blocks = source_kind("openapi").build_blocks(record)
    ids = {b.name: b.id for b in blocks}
    assert ids["petstore_getPetById"] == source_block_id("petstore", "getPetById")
    assert len(set(ids.values())) == len(blocks)


def _spec(paths: dict[str, Any], **extra: Any) -> str:
    doc = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": paths}
    doc.update(extra)
    return json.dumps(doc)


def test_recursive_schemas_are_cut_with_a_marker() -> None:
    node = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
        },
    }
    spec = _spec(
        {
            "/nodes": {
                "post": {
                    "operationId": "makeNode",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Node"}}
                        },
                    },
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
        components={"schemas": {"Node": node}},
    )
    parsed = source_kind("openapi").parse(
        "tree", spec, SourceOptions(base_url="https://api.example.com")
    )
    [op] = full(parsed)
    body = op["input"]["properties"]["body"]
    assert body["properties"]["children"]["items"]["description"] == RECURSION_MARKER
    assert op["input"]["required"] == ["body"]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("{not json", "$"),
        ("- a\n- b\n", "$"),
        (json.dumps({"swagger": "2.0", "paths": {}}), "$.swagger"),
        (json.dumps({"openapi": "2.5", "paths": {}}), "$.openapi"),
        (_spec({"/x": {"get": "nope"}}), "$.paths./x.get"),
        (_spec({"/x": []}), "$.paths./x"),
        (
            _spec({}, components={"securitySchemes": {"k": {"$ref": "#/nowhere"}}}),
            "$.components.securitySchemes.k",
        ),
        (_spec({}), "$.servers"),
    ],
)
def test_malformed_descriptions_are_refused_with_the_json_path(text: str, path: str) -> None:
    base_url = None if path == "$.servers" else "https://api.example.com"
    with pytest.raises(SpecError) as caught:
        source_kind("openapi").parse("bad", text, SourceOptions(base_url=base_url))
    assert caught.value.details["path"] == path
    assert caught.value.code == "invalid_input"


def test_an_inexpressible_operation_is_skipped_not_fatal() -> None:
    spec = _spec(
        {
            "/a/{id}": {"get": {"operationId": "noParam", "responses": {}}},
            "/b": {
                "get": {
                    "operationId": "badRef",
                    "parameters": [{"$ref": "other.yaml#/p"}],
                    "responses": {},
                }
            },
            "/c": {"get": {"operationId": "fine", "responses": {}}},
            "/d": {
                "get": {
                    "operationId": "twoSchemes",
                    "security": [{"a": [], "b": []}],
                    "responses": {},
                }
            },
        },
        servers=[{"url": "https://api.example.com/v1"}],
        components={
            "securitySchemes": {
                "a": {"type": "apiKey", "in": "header", "name": "A"},
                "b": {"type": "apiKey", "in": "header", "name": "B"},
            }
        },
    )
    parsed = source_kind("openapi").parse("mixed", spec, SourceOptions())
    assert [op["key"] for op in operation_summaries(parsed.config)] == ["fine"]
    reasons = {s.operation: s.reason for s in parsed.skipped}
    assert "{id}" in reasons["noParam"]
    assert "external reference" in reasons["badRef"]
    assert "not supported" in reasons["twoSchemes"]
    assert parsed.base_url == "https://api.example.com/v1"
    assert parsed.config["base_url_trusted"] is False


def test_bad_names_and_kinds_are_typed_errors() -> None:
    from blockpilot.sources.base import check_source_name

    for bad in ("", "Pet", "1pets", "pets-store", "x" * 41):
        with pytest.raises(InvalidInputError):
            check_source_name(bad)
    with pytest.raises(InvalidInputError, match="known kinds: mcp, openapi"):
        source_kind("graphql")
