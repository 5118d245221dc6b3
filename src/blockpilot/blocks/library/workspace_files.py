"""Blocks that read and write files in the user's workspace."""

from __future__ import annotations

from typing import Any

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, SchemaField
from blockpilot.executions.context import ExecutionContext


class WriteWorkspaceFileBlock(Block):
    id = "5a0a5a52-6f3c-4c55-8c39-1f0f5d0b7d21"
    effect = BlockEffect.WRITE
    description = (
        "Writes text to a file in the user's workspace (creates or replaces it) "
        "and returns its reference."
    )
    categories = frozenset({BlockCategory.DATA, BlockCategory.PRODUCTIVITY})

    class Input(BlockSchemaInput):
        path: str = SchemaField(
            description="File path in the workspace, e.g. 'notes/today.md'", max_length=1024
        )
        content: str = SchemaField(description="Text to write")

    class Output(BlockSchemaOutput):
        file: str = SchemaField(description="Reference to the file, as workspace://<file id>")
        path: str = SchemaField(description="Normalised path of the file in the workspace")

    async def run(
        self, input_data: Input, *, execution_context: ExecutionContext, **kwargs: Any
    ) -> BlockOutput:
        record = await execution_context.files.write(input_data.path, input_data.content)
        yield "file", record.uri
        yield "path", record.path


class ReadWorkspaceFileBlock(Block):
    id = "0e5b8b0e-3d8a-4b0b-9a36-2f4f8e2b6c11"
    effect = BlockEffect.READ
    description = "Reads a text file from the user's workspace."
    categories = frozenset({BlockCategory.DATA, BlockCategory.PRODUCTIVITY})

    class Input(BlockSchemaInput):
        path: str = SchemaField(
            description="File path in the workspace, e.g. 'notes/today.md'", max_length=1024
        )

    class Output(BlockSchemaOutput):
        content: str = SchemaField(description="The file's text (invalid UTF-8 bytes are replaced)")

    async def run(
        self, input_data: Input, *, execution_context: ExecutionContext, **kwargs: Any
    ) -> BlockOutput:
        data = await execution_context.files.read(input_data.path)
        yield "content", data.decode("utf-8", errors="replace")


class ListWorkspaceFilesBlock(Block):
    id = "9c7f3e61-1b2d-4f57-8c0e-6a3d5b4e2f90"
    effect = BlockEffect.READ
    description = "Lists files in the user's workspace, optionally under a folder prefix."
    categories = frozenset({BlockCategory.DATA, BlockCategory.PRODUCTIVITY})

    class Input(BlockSchemaInput):
        prefix: str = SchemaField(
            default="/", description="Folder to list, e.g. 'notes'; '/' lists everything"
        )

    class Output(BlockSchemaOutput):
        files: list[dict[str, Any]] = SchemaField(
            description="Files with path, uri, size_bytes, checksum, mime_type"
        )

    async def run(
        self, input_data: Input, *, execution_context: ExecutionContext, **kwargs: Any
    ) -> BlockOutput:
        records = await execution_context.files.list(input_data.prefix)
        yield "files", [r.public() for r in records]
