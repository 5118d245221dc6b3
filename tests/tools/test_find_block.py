"""find_block (docs/tools.md) and the exclusions it shares with run_block."""

from __future__ import annotations

import json
from typing import Any

import pytest

from blockpilot.blocks.base import Block, BlockCategory
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, SchemaField
from blockpilot.pilot import Pilot
from blockpilot.settings import DEFAULT_EXCLUDED_BLOCK_IDS, DEFAULT_EXCLUDED_BLOCK_TYPES
from blockpilot.storage.users import User
from tests.tools.bp_helpers import call, make_registry
from tests.tools.bp_test_blocks import (
    ALL_BLOCKS,
    ApiKeyEchoBlock,
    ConfigDisabledByIdBlock,
    ConfigDisabledByNameBlock,
    DisabledFlagBlock,
    EchoTextBlock,
    GraphInputBlock,
    GraphOutputBlock,
    HookTriggerBlock,
    HumanReviewBlock,
    OrchestratorLikeBlock,
    StickyNoteBlock,
)

SUGGESTIONS = [
    "Try broader keywords like 'email', 'http', 'text', 'ai'",
    "Check spelling of technical terms",
]


async def find(pilot: Pilot, user: User, query: Any, **extra: Any) -> dict[str, Any]:
    return await call(pilot, "find_block", {"query": query, **extra}, user_id=user.id)


def _ids(data: dict[str, Any]) -> list[str]:
    return [b["id"] for b in data.get("blocks", [])]


def test_default_exclusions_are_the_documented_ones() -> None:
    assert set(DEFAULT_EXCLUDED_BLOCK_TYPES) >= {
        "INPUT", "OUTPUT", "WEBHOOK", "WEBHOOK_MANUAL",
        "NOTE", "HUMAN_IN_THE_LOOP", "AGENT", "MCP_TOOL",
    }  # fmt: skip
    assert "3b191d9f-356f-482d-8238-ba04b6d18381" in DEFAULT_EXCLUDED_BLOCK_IDS


async def test_empty_or_non_string_query_is_an_error(pilot: Pilot, alice: User) -> None:
    for query in ("", "   ", "\n\t", None, 5, ["echo"]):
        data = await find(pilot, alice, query)
        assert data["type"] == "error", query
        assert data["message"] == "Please provide a search query"


async def test_missing_query_is_an_error(pilot: Pilot, alice: User) -> None:
    data = await call(pilot, "find_block", {}, user_id=alice.id)
    assert data["type"] == "error"
    assert data["message"] == "Please provide a search query"


async def test_uuid_of_an_enabled_block_is_the_single_result(pilot: Pilot, alice: User) -> None:
    for query in (EchoTextBlock.id, EchoTextBlock.id.upper(), f"  {EchoTextBlock.id}  "):
        data = await find(pilot, alice, query)
        assert data["type"] == "block_list", query
        assert data["count"] == 1
        assert _ids(data) == [EchoTextBlock.id]
        assert data["blocks"][0]["name"] == "EchoTextBlock"


async def test_uuid_of_a_disabled_block_is_no_results_saying_disabled(
    pilot: Pilot, alice: User
) -> None:
    for block in (DisabledFlagBlock, ConfigDisabledByIdBlock, ConfigDisabledByNameBlock):
        data = await find(pilot, alice, block.id)
        assert data["type"] == "no_results", block
        assert "disabled" in data["message"]
        assert data["suggestions"]


async def test_uuid_of_an_excluded_block_is_no_results_not_available(
    pilot: Pilot, alice: User
) -> None:
    excluded: tuple[type[Block], ...] = (
        GraphInputBlock,
        GraphOutputBlock,
        StickyNoteBlock,
        HookTriggerBlock,
        HumanReviewBlock,
        OrchestratorLikeBlock,
    )
    for block in excluded:
        data = await find(pilot, alice, block.id)
        assert data["type"] == "no_results", block
        assert "not available" in data["message"]
        assert "blocks" not in data


async def test_unknown_uuid_falls_through_to_search(pilot: Pilot, alice: User) -> None:
    data = await find(pilot, alice, "00000000-0000-4000-8000-000000000000")
    assert data["type"] == "no_results"
    assert data["message"] == "No blocks found for '00000000-0000-4000-8000-000000000000'"
    assert data["suggestions"] == SUGGESTIONS


async def test_exact_name_variants_find_the_block_first(pilot: Pilot, alice: User) -> None:
    for query in (
        "EchoTextBlock", "echotextblock", "echo text block", "Echo-Text", "echo_text", "ECHO TEXT",
    ):  # fmt: skip
        data = await find(pilot, alice, query)
        assert data["type"] == "block_list", query
        assert _ids(data)[0] == EchoTextBlock.id, query


def _widget_block(
    i: int, *, description: str | None = None, name: str | None = None
) -> type[Block]:
    class Input(BlockSchemaInput):
        value: str = SchemaField(description="A value")

    class Output(BlockSchemaOutput):
        value: str = SchemaField(description="A value")

    async def run(self: Block, input_data: Any, **kwargs: Any) -> Any:
        yield "value", input_data.value

    return type(
        name or f"Widget{i:02d}Block",
        (Block,),
        {
            "id": f"7b000000-0000-4000-8000-{i:012d}",
            "description": description or "Turns a zebra widget into a zebra gadget, zebra style.",
            "Input": Input,
            "Output": Output,
            "run": run,
        },
    )


async def test_exact_name_ranks_first_even_when_search_ranks_it_low(
    pilot_factory: Any, alice: User
) -> None:
    zebra = _widget_block(99, name="ZebraBlock", description="Does something unrelated.")
    p = await pilot_factory(registry=make_registry([*(_widget_block(i) for i in range(5)), zebra]))
    data = await find(p, alice, "zebra")
    assert _ids(data)[0] == zebra.id
    assert len(_ids(data)) == 6


async def test_at_most_ten_results(pilot_factory: Any, alice: User) -> None:
    p = await pilot_factory(registry=make_registry([_widget_block(i) for i in range(15)]))
    data = await find(p, alice, "zebra widget")
    assert data["type"] == "block_list"
    assert data["count"] == 10 == len(data["blocks"])


async def test_excluded_and_disabled_blocks_are_never_listed(
    pilot_factory: Any, alice: User
) -> None:
    hidden = {b.id for b in ALL_BLOCKS} - {b.id for b in ALL_BLOCKS if b.__name__ in _VISIBLE}
    p = await pilot_factory()
    # Broad queries, every block's name, and every word of every description.
    queries = {"block", "value", "text", "graph", "disabled", "type", "anything"}
    for block in ALL_BLOCKS:
        queries.add(block.__name__)
        queries.update(block.description.split())
    listed: set[str] = set()
    for query in sorted(queries):
        data = await find(p, alice, query)
        assert data["type"] in ("block_list", "no_results"), (query, data)
        assert not hidden & set(_ids(data)), query
        assert data.get("count", 0) == len(data.get("blocks", [])) <= 10, query
        listed.update(_ids(data))
    # The queries reach every visible block, so the check above saw real result lists.
    assert listed == {b.id for b in ALL_BLOCKS if b.__name__ in _VISIBLE}


_VISIBLE = {
    "EchoTextBlock", "FailingBlock", "SlowBlock", "BigOutputBlock",
    "ApiKeyEchoBlock", "LlmLikeBlock", "HostRequestBlock", "GithubScopedBlock",
}  # fmt: skip


async def test_exact_name_of_an_excluded_block_is_still_filtered(pilot: Pilot, alice: User) -> None:
    for name in (
        "GraphInputBlock",
        "OrchestratorLikeBlock",
        "DisabledFlagBlock",
        "ConfigDisabledByNameBlock",
    ):
        data = await find(pilot, alice, name)
        assert name not in [b["name"] for b in data.get("blocks", [])], name


async def test_block_list_message_items_and_hint(pilot: Pilot, alice: User) -> None:
    data = await find(pilot, alice, "repeat text")
    assert data["type"] == "block_list"
    assert data["query"] == "repeat text"
    assert data["count"] == len(data["blocks"]) >= 1
    assert data["message"].startswith(f"Found {data['count']} block(s) matching 'repeat text'")
    assert "run_block" in data["message"] and "'id'" in data["message"]
    assert "run_block" in data["usage_hint"]
    item = data["blocks"][0]
    assert item["id"] == EchoTextBlock.id
    assert item["name"] == "EchoTextBlock"
    assert item["description"] == EchoTextBlock.description
    assert item["categories"] == ["TEXT"]


async def test_compact_items_are_small_and_have_no_schemas(pilot: Pilot, alice: User) -> None:
    for query in ("text", "api key provider", "echo"):
        data = await find(pilot, alice, query)
        assert data["blocks"], query  # the loop below checks something
        for item in data["blocks"]:
            assert len(json.dumps(item)) < 500, item
            assert not item.get("input_schema")
            assert not item.get("output_schema")
            assert not item.get("required_inputs")


async def test_include_schemas_adds_schemas_and_required_inputs(pilot: Pilot, alice: User) -> None:
    data = await find(pilot, alice, ApiKeyEchoBlock.id, include_schemas=True)
    item = data["blocks"][0]
    assert item["input_schema"]["properties"].keys() == {"prompt", "mode", "credentials"}
    assert "response" in item["output_schema"]["properties"]
    inputs = {i["name"]: i for i in item["required_inputs"]}
    assert set(inputs) == {"prompt", "mode"}  # credentials fields are not inputs to type
    assert inputs["prompt"]["required"] is True
    assert inputs["mode"]["required"] is False and inputs["mode"]["default"] == "ok"
    assert inputs["prompt"]["type"] == "string"
    assert inputs["prompt"]["description"] == "What to send"


async def test_include_schemas_must_be_boolean(pilot: Pilot, alice: User) -> None:
    for value in ("yes", 0, ""):
        data = await find(pilot, alice, "echo", include_schemas=value)
        assert data["code"] == "invalid_arguments"
    assert data["type"] == "error"
    assert data["code"] == "invalid_arguments"


async def test_include_schemas_null_means_the_default(pilot: Pilot, alice: User) -> None:
    # Regression: a null optional argument (as strict function calling sends) was an error.
    data = await find(pilot, alice, EchoTextBlock.id, include_schemas=None)
    assert data["type"] == "block_list"
    assert not data["blocks"][0]["input_schema"]


async def test_no_results_message_and_suggestions(pilot: Pilot, alice: User) -> None:
    data = await find(pilot, alice, "qqqxxyyzz")
    assert data == {
        "type": "no_results",
        "message": "No blocks found for 'qqqxxyyzz'",
        "session_id": data["session_id"],
        "suggestions": SUGGESTIONS,
    }
    assert data["session_id"]


async def test_session_id_is_echoed_and_reused(pilot: Pilot, alice: User) -> None:
    first = await find(pilot, alice, "echo")
    second = await call(
        pilot, "find_block", {"query": "echo"}, user_id=alice.id, session_id=first["session_id"]
    )
    assert second["session_id"] == first["session_id"]


async def test_configured_exclusions_change_find_and_run(pilot_factory: Any, alice: User) -> None:
    """Exclusion lists are configuration; both tools obey the same lists."""
    p = await pilot_factory(
        copilot_excluded_block_types=("NOTE",),
        copilot_excluded_block_ids=(EchoTextBlock.id.upper(),),
    )
    # Excluded now by id (configured in upper case): hidden from search, refused by run_block.
    data = await find(p, alice, EchoTextBlock.id)
    assert data["type"] == "no_results" and "not available" in data["message"]
    data = await find(p, alice, "EchoTextBlock")
    assert EchoTextBlock.id not in _ids(data)
    run = await call(
        p,
        "run_block",
        {"block_id": EchoTextBlock.id, "input_data": {"text": "x"}},
        user_id=alice.id,
    )
    assert run["code"] == "block_excluded"
    # No longer excluded: the INPUT block and the orchestrator id are findable and runnable.
    data = await find(p, alice, GraphInputBlock.id)
    assert _ids(data) == [GraphInputBlock.id]
    data = await find(p, alice, OrchestratorLikeBlock.id)
    assert _ids(data) == [OrchestratorLikeBlock.id]
    run = await call(
        p,
        "run_block",
        {"block_id": GraphInputBlock.id, "input_data": {"value": "v"}},
        user_id=alice.id,
    )
    assert run["type"] == "block_output" and run["outputs"] == {"value": ["v"]}
    # Still excluded by the configured type.
    data = await find(p, alice, StickyNoteBlock.id)
    assert data["type"] == "no_results"
    run = await call(
        p, "run_block", {"block_id": StickyNoteBlock.id, "input_data": {}}, user_id=alice.id
    )
    assert run["code"] == "block_excluded"


async def test_unknown_excluded_type_in_configuration_is_a_clear_error(pilot_factory: Any) -> None:
    from blockpilot.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="unknown block type"):
        await pilot_factory(copilot_excluded_block_types=("NOT_A_TYPE",))


async def test_category_search(pilot: Pilot, alice: User) -> None:
    data = await find(pilot, alice, "developer tools")
    names = {b["name"] for b in data["blocks"]}
    assert {"HostRequestBlock", "GithubScopedBlock"} <= names
    assert all(BlockCategory.DEVELOPER_TOOLS.name in b["categories"] for b in data["blocks"][:2])


async def test_many_hidden_better_matches_do_not_hide_a_usable_block(
    pilot_factory: Any, alice: User
) -> None:
    # Regression: search over-fetched a fixed 40 hits before filtering, so 40+ disabled
    # blocks ranking higher turned a usable match into "No blocks found".
    hidden = [_widget_block(i) for i in range(45)]
    usable = _widget_block(
        900, name="GadgetMakerBlock", description="Builds a gadget from parts; zebra optional."
    )
    p = await pilot_factory(
        registry=make_registry([*hidden, usable], disabled=[b.__name__ for b in hidden])
    )
    data = await find(p, alice, "zebra widget gadget")
    assert data["type"] == "block_list"
    assert _ids(data) == [usable.id]


async def test_disabled_blocks_setting_applies_to_the_built_in_registry(
    settings_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from blockpilot.blocks.registry import BlockRegistry

    builtin = {b.name: b for b in BlockRegistry().all()}
    by_name, by_id = builtin["CalculatorBlock"], builtin["FillTextTemplateBlock"]
    monkeypatch.setenv("BLOCKPILOT_DISABLED_BLOCKS", f"calculatorblock, {by_id.id}")
    monkeypatch.setenv("BLOCKPILOT_COPILOT_EXCLUDED_BLOCK_TYPES", "NOTE")
    p = await Pilot.open(settings_factory())
    try:
        user, _ = await p.users.create("carol")
        for block in (by_name, by_id):
            data = await call(p, "find_block", {"query": block.id}, user_id=user.id)
            assert data["type"] == "no_results" and "disabled" in data["message"]
            run = await call(
                p, "run_block", {"block_id": block.id, "input_data": {}}, user_id=user.id
            )
            assert run["code"] == "block_disabled"
        # Only NOTE is excluded now: the built-in AgentInputBlock (INPUT) is available.
        data = await call(
            p, "find_block", {"query": builtin["AgentInputBlock"].id}, user_id=user.id
        )
        assert data["type"] == "block_list"
        data = await call(p, "find_block", {"query": builtin["NoteBlock"].id}, user_id=user.id)
        assert data["type"] == "no_results" and "not available" in data["message"]
    finally:
        await p.close()
