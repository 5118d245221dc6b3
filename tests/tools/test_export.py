"""Tool definitions exported for OpenAI, Anthropic and MCP, all from one definition."""

from __future__ import annotations

import json

import pytest

from blockpilot.errors import InvalidInputError
from blockpilot.pilot import Pilot


def test_openai_shape(pilot: Pilot) -> None:
    tools = pilot.export_tools("openai")
    assert [t["function"]["name"] for t in tools] == [
        "find_block",
        "run_block",
        "continue_run_block",
        "get_execution",
    ]
    for tool in tools:
        assert tool.keys() == {"type", "function"}
        assert tool["type"] == "function"
        assert tool["function"].keys() == {"name", "description", "parameters"}
        assert tool["function"]["parameters"]["type"] == "object"
        assert tool["function"]["description"]
    run = tools[1]["function"]["parameters"]
    assert run["required"] == ["block_id", "input_data"]
    assert run["properties"]["input_data"]["type"] == "object"
    assert run["properties"]["dry_run"]["type"] == "boolean"
    assert "never guess" in run["properties"]["block_id"]["description"].lower()
    find = tools[0]["function"]["parameters"]
    assert find["required"] == ["query"]
    assert find["properties"]["include_schemas"]["default"] is False


def test_anthropic_shape(pilot: Pilot) -> None:
    tools = pilot.export_tools("anthropic")
    assert [t["name"] for t in tools] == [
        "find_block",
        "run_block",
        "continue_run_block",
        "get_execution",
    ]
    for tool in tools:
        assert tool.keys() == {"name", "description", "input_schema"}
        assert tool["input_schema"] == pilot.tools[tool["name"]].parameters


def test_mcp_shape(pilot: Pilot) -> None:
    tools = pilot.export_tools("mcp")
    assert [t["name"] for t in tools] == [
        "find_block",
        "run_block",
        "continue_run_block",
        "get_execution",
    ]
    for tool in tools:
        assert tool.keys() == {
            "name",
            "title",
            "description",
            "inputSchema",
            "outputSchema",
            "annotations",
        }
        assert tool["inputSchema"]["type"] == "object"


def test_all_formats_share_one_definition_and_are_json(pilot: Pilot) -> None:
    openai = pilot.export_tools("openai")
    anthropic = pilot.export_tools("anthropic")
    mcp = pilot.export_tools("mcp")
    for o, a, m in zip(openai, anthropic, mcp, strict=True):
        fn = o["function"]
        assert fn["name"] == a["name"] == m["name"]
        assert fn["description"] == a["description"] == m["description"]
        assert fn["parameters"] == a["input_schema"] == m["inputSchema"]
    json.dumps([openai, anthropic, mcp])


def test_exports_are_copies(pilot: Pilot) -> None:
    exported = pilot.export_tools("openai")
    exported[0]["function"]["parameters"]["properties"]["query"]["type"] = "integer"
    exported[1]["function"]["parameters"]["required"].append("oops")
    assert pilot.tools["find_block"].parameters["properties"]["query"]["type"] == "string"
    assert pilot.tools["run_block"].parameters["required"] == ["block_id", "input_data"]


def test_unknown_format_is_invalid_input(pilot: Pilot) -> None:
    for fmt in ["cohere", "OpenAI", "", "mcp "]:
        with pytest.raises(InvalidInputError, match="openai, anthropic, mcp"):
            pilot.export_tools(fmt)
