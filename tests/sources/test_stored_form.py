"""The stored form of an OpenAPI source (docs/sources.md#stored-form).

Format 3 keeps the operations as columns with each operation's summary and full form as JSON
text (quotes swapped); format 2, stored by earlier versions, is still read. Both give the
same blocks: ids, names, effects, search fields, full operations and input schemas.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from blockpilot.sources.base import SourceOptions, source_block_id, source_kind
from blockpilot.sources.openapi.block import OpenAPIOperationBlock
from blockpilot.sources.openapi.kind import (
    _summary,
    operation_count,
    operation_details,
    operation_summaries,
)
from blockpilot.storage.sources import SourceRecord

PETSTORE = Path(__file__).parents[1] / "data" / "openapi" / "petstore3.yaml"
QUOTES = "A \"quoted\" name, an apostrophe's and a back\\slash: don't \\\"break\\\" 'it'"


def _quoted_spec() -> str:
    return json.dumps(
        {
            "openapi": "3.1.0",
            "info": {"title": "Quotes", "version": "1"},
            "paths": {
                "/it's": {
                    "post": {
                        "operationId": "say'it",
                        "summary": QUOTES,
                        "parameters": [
                            {"name": "q'\"", "in": "query", "description": QUOTES,
                             "schema": {"type": "string", "default": "'\""}},
                        ],
                        "responses": {"200": {"description": "OK"}},
                    }
                }
            },
        }
    )  # fmt: skip


def _record(name: str, text: str) -> SourceRecord:
    parsed = source_kind("openapi").parse(name, text, SourceOptions(base_url="https://x.test"))
    return SourceRecord(name=name, kind="openapi", spec_text="", config=parsed.config)


def _format_2(config: dict[str, Any]) -> dict[str, Any]:
    """The same source as an earlier blockpilot stored it."""
    details = operation_details(config)
    old = {k: v for k, v in config.items() if k not in ("operations", "source")}
    old.update(
        format=2,
        operations=[_summary(op) for op in details],
        details=[json.dumps(op, separators=(",", ":")) for op in details],
    )
    return old


def _facts(block: Any) -> tuple[Any, ...]:
    assert isinstance(block, OpenAPIOperationBlock)
    return (
        block.id, block.name, block.description, block.effect, block.base_url,
        block.search_fields(), dict(block.summary), dict(block.operation),
        block.Input.jsonschema(), block.Output.jsonschema(),
    )  # fmt: skip


@pytest.mark.parametrize("name", ["petstore", "quotes"])
def test_format_2_and_3_build_the_same_blocks(name: str) -> None:
    text = PETSTORE.read_text(encoding="utf-8") if name == "petstore" else _quoted_spec()
    record = _record(name, text)
    assert record.config["format"] == 3
    kind = source_kind("openapi")
    new = [_facts(b) for b in kind.build_blocks(record)]
    old = [_facts(b) for b in kind.build_blocks(replace(record, config=_format_2(record.config)))]
    assert new == old and new
    assert operation_count(record.config) == len(new)
    assert operation_summaries(_format_2(record.config)) == operation_summaries(record.config)


def test_quotes_survive_the_stored_form() -> None:
    record = _record("quotes", _quoted_spec())
    (block,) = source_kind("openapi").build_blocks(record)
    assert block.description.startswith(QUOTES)
    (param,) = block.operation["params"]
    assert param["name"] == "q'\""
    assert block.Input.jsonschema()["properties"][param["field"]]["default"] == "'\""
    assert (param["field"], QUOTES) in [(f, d[: len(QUOTES)]) for f, d in block.search_fields()]


def test_ids_follow_the_record_name() -> None:
    """Stored ids are the parsed name's; a record under another name gets its own."""
    record = _record("petstore", PETSTORE.read_text(encoding="utf-8"))
    renamed = replace(record, name="pets")
    for block, key in zip(
        source_kind("openapi").build_blocks(renamed),
        (op["key"] for op in operation_summaries(record.config)),
        strict=True,
    ):
        assert block.id == source_block_id("pets", key)
