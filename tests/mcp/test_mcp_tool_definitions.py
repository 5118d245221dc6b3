"""One definition of the MCP tools: ``tools/list`` and ``GET /api/v1/tools?format=mcp``
answer the same; ``run_block``'s annotations follow the effects of the blocks it can run
(docs/mcp.md)."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from blockpilot.api import create_app
from blockpilot.blocks.base import Block, BlockEffect, BlockOutput
from blockpilot.blocks.registry import BlockRegistry
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, SchemaField
from blockpilot.mcp import build_mcp_server
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.testing import serve_asgi


class _EchoBlock(Block):
    class Input(BlockSchemaInput):
        text: str = SchemaField(description="Any text")

    class Output(BlockSchemaOutput):
        text: str = SchemaField(description="The same text")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        yield "text", input_data.text


class ReadEchoBlock(_EchoBlock):
    id = "5b0c2f1e-8d7a-4e3b-9c6f-1a2b3c4d5e01"
    description = "Echoes text; changes nothing."
    effect: ClassVar[BlockEffect] = BlockEffect.READ


class DeleteEchoBlock(_EchoBlock):
    id = "5b0c2f1e-8d7a-4e3b-9c6f-1a2b3c4d5e02"
    description = "Echoes text and deletes something."
    effect: ClassVar[BlockEffect] = BlockEffect.DESTRUCTIVE


async def _annotations(settings: Settings, *blocks: type[Block]) -> dict[str, dict[str, Any]]:
    registry = BlockRegistry(sources=[("test", lambda: list(blocks))])
    pilot = await Pilot.open(settings, registry=registry)
    try:
        user, _ = await pilot.users.create(f"user-{len(blocks)}")
        async with Client(build_mcp_server(pilot, user.id), mode="legacy") as client:
            tools = (await client.list_tools()).tools
    finally:
        await pilot.close()
    return {t.name: t.annotations.model_dump(by_alias=True, exclude_none=True) for t in tools}


async def test_run_block_annotations_follow_the_effects_of_its_blocks(
    settings: Settings,
) -> None:
    only_reads = await _annotations(settings, ReadEchoBlock)
    with_delete = await _annotations(settings, ReadEchoBlock, DeleteEchoBlock)
    assert only_reads["run_block"]["readOnlyHint"] is True
    assert only_reads["run_block"]["destructiveHint"] is False
    assert with_delete["run_block"]["readOnlyHint"] is False
    assert with_delete["run_block"]["destructiveHint"] is True
    for tools in (only_reads, with_delete):
        assert tools["find_block"]["readOnlyHint"] is True
        assert tools["find_block"]["openWorldHint"] is False
        assert tools["run_block"]["openWorldHint"] is True
        assert tools["run_block"]["title"] == "Run block"


async def test_tools_list_and_the_http_mcp_export_are_the_same(pilot: Pilot) -> None:
    _, key = await pilot.users.create("carol")
    auth = {"Authorization": f"Bearer {key}"}
    async with serve_asgi(create_app(pilot), timeout=20) as base:
        async with httpx.AsyncClient(base_url=base, headers=auth, timeout=20) as http:
            exported = (await http.get("/api/v1/tools", params={"format": "mcp"})).json()
        async with (
            create_mcp_http_client(headers=auth) as client_http,
            Client(streamable_http_client(f"{base}/mcp", http_client=client_http)) as client,
        ):
            listed = (await client.list_tools()).tools
    as_json = [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in listed]
    assert as_json == exported["tools"]
    by_name = {t["name"]: t for t in as_json}
    assert by_name["run_block"]["annotations"]["readOnlyHint"] is False  # built-in blocks write
    assert by_name["find_block"]["annotations"]["readOnlyHint"] is True
    assert by_name["run_block"]["outputSchema"]["required"] == ["type", "message"]
