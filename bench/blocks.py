"""Bench-only blocks and the trivial function every peer wraps.

The same work everywhere: ``echo(text) -> text``. blockpilot runs it as a block (typed
input, validated output pin, execution record); LangChain as a ``StructuredTool``; the MCP
SDK as an ``MCPServer`` tool; the raw baseline calls the block's ``run`` directly.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, Field

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.registry import BlockRegistry, BlockSource
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import CredentialsMetaInput


async def echo(text: str) -> str:
    """Echo the text back (the trivial function every runtime wraps)."""
    return text


class EchoArgs(BaseModel):
    text: str = Field(description="Text to echo")


class BenchEchoBlock(Block):
    id = "b3e0c7a2-0000-4b1e-8c00-00000000e001"
    description = "Bench only: echoes a text back. No credentials."
    categories = frozenset({BlockCategory.BASIC})
    effect = BlockEffect.READ  # it changes nothing (as the peers' echo tools)

    class Input(BlockSchemaInput):
        text: str = SchemaField(description="Text to echo")

    class Output(BlockSchemaOutput):
        text: str = SchemaField(description="The same text")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        yield "text", await echo(input_data.text)


class BenchWriteEchoBlock(BenchEchoBlock):
    """The same echo declared as a ``write``: its ``running`` record is committed before it
    starts, as for any block that may change something (docs/performance.md)."""

    id = "b3e0c7a2-0000-4b1e-8c00-00000000e004"
    description = "Bench only: echoes a text back, declared as a write. No credentials."
    effect = BlockEffect.WRITE


class BenchApiKeyBlock(Block):
    id = "b3e0c7a2-0000-4b1e-8c00-00000000e002"
    description = (
        "Bench only: echoes a text back; needs the user's OpenAI API key (decrypted per run)."
    )
    categories = frozenset({BlockCategory.AI})

    class Input(BlockSchemaInput):
        text: str = SchemaField(description="Text to echo")
        credentials: CredentialsMetaInput = CredentialsField(
            providers=["openai"], supported_types=["api_key"], description="OpenAI API key"
        )

    class Output(BlockSchemaOutput):
        text: str = SchemaField(description="The same text")

    async def run(self, input_data: Input, *, credentials: Any, **kwargs: Any) -> BlockOutput:
        if not credentials.api_key.get_secret_value():
            yield "error", "empty key"
            return
        yield "text", await echo(input_data.text)


class BenchSleepBlock(Block):
    id = "b3e0c7a2-0000-4b1e-8c00-00000000e003"
    description = "Bench only: sleeps for a while, then says done."
    categories = frozenset({BlockCategory.BASIC})

    class Input(BlockSchemaInput):
        seconds: float = SchemaField(description="How long to sleep", ge=0, le=10)

    class Output(BlockSchemaOutput):
        done: bool = SchemaField(description="Always true")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        await asyncio.sleep(input_data.seconds)
        yield "done", True


BENCH_BLOCKS: tuple[type[Block], ...] = (
    BenchEchoBlock,
    BenchWriteEchoBlock,
    BenchApiKeyBlock,
    BenchSleepBlock,
)


def bench_registry(
    *, bench_blocks: bool = True, builtins: bool = False, extra: list[type[Block]] | None = None
) -> BlockRegistry:
    """A registry with the bench blocks, the built-in ones and *extra*, as asked."""
    sources: list[tuple[str, BlockSource]] = []
    if bench_blocks:
        sources.append(("bench", lambda: list(BENCH_BLOCKS)))
    if builtins:
        sources += [
            (name, load)
            for name, load in BlockRegistry.default_sources()
            if name.startswith("blockpilot.")
        ]
    if extra:
        sources.append(("synthetic", lambda: list(extra)))
    return BlockRegistry(sources)


__all__ = [
    "BENCH_BLOCKS",
    "BenchApiKeyBlock",
    "BenchEchoBlock",
    "BenchSleepBlock",
    "BenchWriteEchoBlock",
    "EchoArgs",
    "bench_registry",
    "echo",
]
