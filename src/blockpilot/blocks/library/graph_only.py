"""Blocks that only make sense inside a graph; the copilot excludes them (docs/tools.md)."""

from __future__ import annotations

from typing import Any

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput, BlockType
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, SchemaField


class AgentInputBlock(Block):
    id = "c0a8e994-ebf1-4a9c-a4d8-89d09c86741b"
    effect = BlockEffect.READ
    description = "Receives a value entering the agent graph from outside."
    categories = frozenset({BlockCategory.INPUT})
    block_type = BlockType.INPUT

    class Input(BlockSchemaInput):
        name: str = SchemaField(description="Name of the graph input")
        value: Any = SchemaField(default=None, description="The value given to the graph")

    class Output(BlockSchemaOutput):
        result: Any = SchemaField(description="The input value")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        yield "result", input_data.value


class AgentOutputBlock(Block):
    id = "363ae599-353e-4804-937e-b2ee3cef3da4"
    effect = BlockEffect.READ
    description = "Records a value leaving the agent graph as one of its outputs."
    categories = frozenset({BlockCategory.OUTPUT})
    block_type = BlockType.OUTPUT

    class Input(BlockSchemaInput):
        name: str = SchemaField(description="Name of the graph output")
        value: Any = SchemaField(default=None, description="The value to output")

    class Output(BlockSchemaOutput):
        output: Any = SchemaField(description="The output value")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        yield "output", input_data.value


class NoteBlock(Block):
    id = "cc10ff7b-7753-4ff2-9af6-9399b1a7eddc"
    effect = BlockEffect.READ
    description = "A sticky note on the graph canvas; it does nothing."
    categories = frozenset({BlockCategory.BASIC})
    block_type = BlockType.NOTE

    class Input(BlockSchemaInput):
        text: str = SchemaField(default="", description="The note's text")

    class Output(BlockSchemaOutput):
        output: str = SchemaField(description="The note's text")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        yield "output", input_data.text


class WebhookTriggerBlock(Block):
    id = "8fa8c167-2002-47ce-aba8-97572fc5d387"
    effect = BlockEffect.READ
    description = "Starts a graph when an outside service calls its webhook; waits for events."
    categories = frozenset({BlockCategory.INPUT, BlockCategory.DEVELOPER_TOOLS})
    block_type = BlockType.WEBHOOK

    class Input(BlockSchemaInput):
        payload: dict[str, Any] = SchemaField(
            default_factory=dict, description="The webhook payload"
        )

    class Output(BlockSchemaOutput):
        payload: dict[str, Any] = SchemaField(description="The received payload")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        yield "payload", input_data.payload


class OrchestratorBlock(Block):
    """STANDARD-typed, but it discovers its tools from the graph layout, so it is excluded by id."""

    id = "3b191d9f-356f-482d-8238-ba04b6d18381"
    description = (
        "Lets an LLM decide which connected graph blocks to call next (tools come from the graph)."
    )
    categories = frozenset({BlockCategory.AI, BlockCategory.AGENT})

    class Input(BlockSchemaInput):
        prompt: str = SchemaField(description="The task for the orchestrator")

    class Output(BlockSchemaOutput):
        finished: str = SchemaField(description="The final answer when no tool is called")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        yield "error", "OrchestratorBlock needs a graph to discover its tools"
