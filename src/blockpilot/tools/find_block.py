"""find_block: search the block catalogue (docs/tools.md#find_block)."""

from __future__ import annotations

from typing import Any

from blockpilot.blocks.base import Block
from blockpilot.blocks.schema import get_inputs_from_schema
from blockpilot.catalog import Catalog
from blockpilot.ids import is_uuid
from blockpilot.tools.base import BaseTool, ToolCall, ToolHints
from blockpilot.tools.responses import (
    BlockInfoSummary,
    BlockInputFieldInfo,
    BlockListResponse,
    ErrorResponse,
    NoResultsResponse,
    ToolResponseBase,
)

MAX_RESULTS = 10
SUGGESTIONS = [
    "Try broader keywords like 'email', 'http', 'text', 'ai'",
    "Check spelling of technical terms",
]


def block_summary(block: Block, *, include_schemas: bool) -> BlockInfoSummary:
    summary = BlockInfoSummary(
        id=block.id,
        name=block.name,
        description=block.description,
        categories=sorted(c.name for c in block.categories),
        effect=block.effect.value,
    )
    if include_schemas:
        inputs = block.Input.jsonschema()
        summary.input_schema = inputs
        summary.output_schema = block.Output.jsonschema()
        summary.required_inputs = [
            BlockInputFieldInfo(**field)
            for field in get_inputs_from_schema(inputs, set(block.Input.credentials_fields()))
        ]
    return summary


class FindBlockTool(BaseTool):
    title = "Find block"
    name = "find_block"
    description = (
        "Search the available blocks (integrations such as sending e-mail, calling an LLM, "
        "HTTP requests, GitHub, workspace files) by keywords, block name or block id. "
        "Returns each block's id; then call run_block with that id."
    )
    parameters = {
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "description": (
                    "Search keywords (e.g. 'email', 'http request', 'ai text'), "
                    "a block name or a block id"
                ),
            },
            "include_schemas": {
                "type": "boolean",
                "description": "Include each block's input and output schemas (larger response)",
                "default": False,
            },
        },
        "required": ["query"],
    }

    def __init__(self, catalog: Catalog, timeout_seconds: float = 120.0) -> None:
        super().__init__(timeout_seconds)
        self._catalog = catalog

    def hints(self) -> ToolHints:
        return ToolHints(read_only=True, destructive=False, idempotent=True, open_world=False)

    async def run(self, call: ToolCall, **arguments: Any) -> ToolResponseBase:
        query = arguments.get("query")
        include = arguments.get("include_schemas")
        include = False if include is None else include  # null means the default
        session_id = call.session_id
        if not isinstance(query, str) or not query.strip():
            return ErrorResponse(
                message="Please provide a search query",
                error="missing_query",
                code="missing_query",
                session_id=session_id,
            )
        if not isinstance(include, bool):
            return ErrorResponse(
                message="include_schemas must be true or false",
                error="invalid_arguments",
                code="invalid_arguments",
                session_id=session_id,
            )
        query = query.strip()[:500]
        if is_uuid(query):
            block = self._catalog.registry.get(query.lower())
            if block is not None:
                return self._by_id(block, include, session_id)
        await self._catalog.ready()
        blocks = self._catalog.search(query, MAX_RESULTS)
        if not blocks:
            return NoResultsResponse(
                message=f"No blocks found for '{query}'",
                suggestions=SUGGESTIONS,
                session_id=session_id,
            )
        return BlockListResponse(
            message=(
                f"Found {len(blocks)} block(s) matching '{query}'. To run one, call run_block "
                "with the block's 'id' (call it with input_data {} first to see its inputs)."
            ),
            blocks=[block_summary(b, include_schemas=include) for b in blocks],
            count=len(blocks),
            query=query,
            session_id=session_id,
        )

    def _by_id(self, block: Block, include: bool, session_id: str | None) -> ToolResponseBase:
        if self._catalog.registry.is_disabled(block):
            return NoResultsResponse(
                message=f"Block '{block.name}' ({block.id}) is disabled and cannot be used.",
                suggestions=SUGGESTIONS,
                session_id=session_id,
            )
        if self._catalog.exclusions.excludes(block):
            return NoResultsResponse(
                message=(
                    f"Block '{block.name}' ({block.id}) is not available in the copilot. "
                    "It can only be used within graphs."
                ),
                suggestions=SUGGESTIONS,
                session_id=session_id,
            )
        return BlockListResponse(
            message=f"Found block '{block.name}' by id. Call run_block with block_id '{block.id}'.",
            blocks=[block_summary(block, include_schemas=include)],
            count=1,
            query=block.id,
            session_id=session_id,
        )
