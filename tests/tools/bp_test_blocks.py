"""Test-only blocks for the tool tests: each records its calls so tests can prove whether
a block body ran, and with which keyword arguments."""

from __future__ import annotations

import asyncio
import base64
from typing import Any, Literal
from urllib.parse import quote

from blockpilot.blocks.base import Block, BlockCategory, BlockOutput, BlockType
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import CredentialsMetaInput
from blockpilot.errors import BlockExecutionError, DestinationBlockedError

#: Every run of a test block appends {"block", "input", "kwargs"} here.
CALLS: list[dict[str, Any]] = []

ORCHESTRATOR_ID = "3b191d9f-356f-482d-8238-ba04b6d18381"


def _record(block: Block, input_data: Any, kwargs: dict[str, Any]) -> None:
    CALLS.append({"block": block.name, "input": input_data, "kwargs": kwargs})


def calls_of(name: str) -> list[dict[str, Any]]:
    return [c for c in CALLS if c["block"] == name]


# --------------------------------------------------------------------------- plain blocks


class EchoTextBlock(Block):
    id = "6a0f2c1e-1111-4a8e-9b51-000000000001"
    description = "Repeats a text on its output pin a number of times."
    categories = frozenset({BlockCategory.TEXT})

    class Input(BlockSchemaInput):
        text: str = SchemaField(description="Text to repeat")
        times: int = SchemaField(default=1, ge=1, le=5, description="How many times to repeat it")
        tag: str = SchemaField(default="", description="Optional tag copied to the output")

    class Output(BlockSchemaOutput):
        out: str = SchemaField(description="The text, once per repetition")
        tag: str = SchemaField(description="The tag")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        _record(self, input_data, kwargs)
        for _ in range(input_data.times):
            yield "out", input_data.text
        if input_data.tag:
            yield "tag", input_data.tag


class FailingBlock(Block):
    id = "6a0f2c1e-1111-4a8e-9b51-000000000002"
    description = "Fails on purpose in a chosen way."

    class Input(BlockSchemaInput):
        mode: Literal[
            "error_pin", "block_error", "crash", "value_error", "own_timeout", "network", "bad_pin"
        ] = SchemaField(description="How to fail")
        reason: str = SchemaField(default="it broke", description="The failure text")

    class Output(BlockSchemaOutput):
        result: str = SchemaField(description="Never produced")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        _record(self, input_data, kwargs)
        if input_data.mode == "error_pin":
            yield "error", input_data.reason
        elif input_data.mode == "block_error":
            raise BlockExecutionError(input_data.reason, block_name=self.name, block_id=self.id)
        elif input_data.mode == "value_error":
            raise ValueError(input_data.reason)
        elif input_data.mode == "network":
            raise DestinationBlockedError(input_data.reason)
        elif input_data.mode == "bad_pin":
            yield "reslut", input_data.reason
        elif input_data.mode == "own_timeout":
            raise TimeoutError(input_data.reason)  # e.g. a socket timeout inside the block
        else:
            raise RuntimeError(input_data.reason)


class SlowBlock(Block):
    id = "6a0f2c1e-1111-4a8e-9b51-000000000003"
    description = "Sleeps longer than its own timeout."
    timeout_seconds = 0.2

    class Input(BlockSchemaInput):
        seconds: float = SchemaField(default=5.0, description="How long to sleep")

    class Output(BlockSchemaOutput):
        done: bool = SchemaField(description="True when it woke up")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        _record(self, input_data, kwargs)
        await asyncio.sleep(input_data.seconds)
        yield "done", True


class BigOutputBlock(Block):
    id = "6a0f2c1e-1111-4a8e-9b51-000000000004"
    description = "Produces a large text output."

    class Input(BlockSchemaInput):
        size: int = SchemaField(description="Characters per value")
        count: int = SchemaField(default=1, description="Number of values")

    class Output(BlockSchemaOutput):
        data: str = SchemaField(description="The generated text")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        _record(self, input_data, kwargs)
        for i in range(input_data.count):
            body = "".join(chr(ord("a") + (j + i) % 26) for j in range(input_data.size))
            yield "data", body


class DisabledFlagBlock(Block):
    id = "6a0f2c1e-1111-4a8e-9b51-000000000005"
    description = "Disabled by its class flag."
    disabled = True

    class Input(BlockSchemaInput):
        text: str = SchemaField(description="Anything")

    class Output(BlockSchemaOutput):
        out: str = SchemaField(description="Anything")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        _record(self, input_data, kwargs)
        yield "out", input_data.text


class ConfigDisabledByIdBlock(DisabledFlagBlock):
    id = "6a0f2c1e-1111-4a8e-9b51-000000000006"
    description = "Disabled by configuration, by id."
    disabled = False


class ConfigDisabledByNameBlock(DisabledFlagBlock):
    id = "6a0f2c1e-1111-4a8e-9b51-000000000007"
    description = "Disabled by configuration, by name."
    disabled = False


# --------------------------------------------------------------------------- graph-only blocks


def _graph_block(name: str, block_id: str, block_type: BlockType) -> type[Block]:
    class Input(BlockSchemaInput):
        value: str = SchemaField(default="", description="A value")

    class Output(BlockSchemaOutput):
        value: str = SchemaField(description="The value")

    async def run(self: Block, input_data: Any, **kwargs: Any) -> BlockOutput:
        _record(self, input_data, kwargs)
        yield "value", input_data.value

    return type(
        name,
        (Block,),
        {
            "id": block_id,
            "description": f"A graph-only block of type {block_type.name}.",
            "block_type": block_type,
            "Input": Input,
            "Output": Output,
            "run": run,
            "__module__": __name__,
        },
    )


GraphInputBlock = _graph_block(
    "GraphInputBlock", "6a0f2c1e-2222-4a8e-9b51-000000000001", BlockType.INPUT
)
GraphOutputBlock = _graph_block(
    "GraphOutputBlock", "6a0f2c1e-2222-4a8e-9b51-000000000002", BlockType.OUTPUT
)
StickyNoteBlock = _graph_block(
    "StickyNoteBlock", "6a0f2c1e-2222-4a8e-9b51-000000000003", BlockType.NOTE
)
HookTriggerBlock = _graph_block(
    "HookTriggerBlock", "6a0f2c1e-2222-4a8e-9b51-000000000004", BlockType.WEBHOOK
)
HumanReviewBlock = _graph_block(
    "HumanReviewBlock", "6a0f2c1e-2222-4a8e-9b51-000000000005", BlockType.HUMAN_IN_THE_LOOP
)
OrchestratorLikeBlock = _graph_block("OrchestratorLikeBlock", ORCHESTRATOR_ID, BlockType.STANDARD)

GRAPH_ONLY = (
    GraphInputBlock,
    GraphOutputBlock,
    StickyNoteBlock,
    HookTriggerBlock,
    OrchestratorLikeBlock,
)


# --------------------------------------------------------------------------- credential blocks

EchoMode = Literal[
    "ok", "echo", "echo_b64", "echo_url", "echo_big", "error_pin", "block_error", "crash"
]


def _leak(secret: str, mode: str) -> str:
    if mode == "echo_b64":
        return base64.b64encode(secret.encode()).decode()
    if mode == "echo_url":
        return quote(secret, safe="")
    return secret


class ApiKeyEchoBlock(Block):
    id = "6a0f2c1e-3333-4a8e-9b51-000000000001"
    description = "Calls a provider with an OpenAI API key; can misbehave and echo the key."
    categories = frozenset({BlockCategory.AI})

    class Input(BlockSchemaInput):
        prompt: str = SchemaField(description="What to send")
        mode: EchoMode = SchemaField(default="ok", description="How the fake provider behaves")
        credentials: CredentialsMetaInput = CredentialsField(
            providers=["openai"], supported_types=["api_key"], description="OpenAI API key"
        )

    class Output(BlockSchemaOutput):
        response: str = SchemaField(description="The provider's answer")
        credential_id: str = SchemaField(description="Id of the credential received")

    async def run(self, input_data: Input, *, credentials: Any, **kwargs: Any) -> BlockOutput:
        _record(self, input_data, {**kwargs, "credentials": credentials})
        secret = credentials.api_key.get_secret_value()
        text = _leak(secret, input_data.mode)
        if input_data.mode == "error_pin":
            yield "error", f"provider said: invalid key {text}"
            return
        if input_data.mode == "block_error":
            raise BlockExecutionError(f"401 Incorrect API key provided: {text}")
        if input_data.mode == "crash":
            raise RuntimeError(f"connection reset while sending Authorization: {text}")
        yield "credential_id", credentials.id
        if input_data.mode == "echo_big":  # too large for the response: saved to the workspace
            yield "response", f"{text} " + "x" * 3000 + f" {text}"
            return
        yield (
            "response",
            f"echo {text}" if input_data.mode != "ok" else f"answer to {input_data.prompt}",
        )


LLM_MAPPING = {"gpt-4o-mini": "openai", "gpt-4o": "openai", "claude-sonnet-4-5": "anthropic"}


class LlmLikeBlock(Block):
    id = "6a0f2c1e-3333-4a8e-9b51-000000000002"
    description = "An LLM-like block whose model input decides the provider."
    categories = frozenset({BlockCategory.AI})

    class Input(BlockSchemaInput):
        prompt: str = SchemaField(description="The prompt")
        model: str = SchemaField(default="gpt-4o-mini", description="The model")
        credentials: CredentialsMetaInput = CredentialsField(
            providers=["openai", "anthropic"],
            supported_types=["api_key"],
            discriminator="model",
            discriminator_mapping=LLM_MAPPING,
            description="API key of the model's provider",
        )

    class Output(BlockSchemaOutput):
        provider: str = SchemaField(description="Provider of the credential used")

    async def run(self, input_data: Input, *, credentials: Any, **kwargs: Any) -> BlockOutput:
        _record(self, input_data, {**kwargs, "credentials": credentials})
        yield "provider", credentials.provider


class HostRequestBlock(Block):
    id = "6a0f2c1e-3333-4a8e-9b51-000000000003"
    description = "Pretends to send a request with host-scoped headers; echoes them on demand."
    categories = frozenset({BlockCategory.DEVELOPER_TOOLS})

    class Input(BlockSchemaInput):
        url: str = SchemaField(description="The URL to call")
        echo: bool = SchemaField(
            default=False, description="Echo the headers back (a leaky provider)"
        )
        credentials: CredentialsMetaInput = CredentialsField(
            providers=["http"],
            supported_types=["host_scoped"],
            discriminator="url",
            description="Headers for the URL's host",
        )

    class Output(BlockSchemaOutput):
        credential_id: str = SchemaField(description="Id of the credential received")
        headers: dict[str, str] = SchemaField(description="Headers that would be sent")

    async def run(self, input_data: Input, *, credentials: Any, **kwargs: Any) -> BlockOutput:
        _record(self, input_data, {**kwargs, "credentials": credentials})
        yield "credential_id", credentials.id
        if input_data.echo:
            yield "headers", credentials.header_values()


class GithubScopedBlock(Block):
    id = "6a0f2c1e-3333-4a8e-9b51-000000000004"
    description = "Needs a GitHub OAuth token with the repo scope."
    categories = frozenset({BlockCategory.DEVELOPER_TOOLS})

    class Input(BlockSchemaInput):
        repo: str = SchemaField(description="owner/name")
        credentials: CredentialsMetaInput = CredentialsField(
            providers=["github"],
            supported_types=["oauth2"],
            required_scopes=["repo"],
            description="GitHub account",
        )

    class Output(BlockSchemaOutput):
        credential_id: str = SchemaField(description="Id of the credential received")

    async def run(self, input_data: Input, *, credentials: Any, **kwargs: Any) -> BlockOutput:
        _record(self, input_data, {**kwargs, "credentials": credentials})
        yield "credential_id", credentials.id


STANDARD_BLOCKS: tuple[type[Block], ...] = (
    EchoTextBlock,
    FailingBlock,
    SlowBlock,
    BigOutputBlock,
    DisabledFlagBlock,
    ConfigDisabledByIdBlock,
    ConfigDisabledByNameBlock,
    ApiKeyEchoBlock,
    LlmLikeBlock,
    HostRequestBlock,
    GithubScopedBlock,
)
ALL_BLOCKS: tuple[type[Block], ...] = (*STANDARD_BLOCKS, *GRAPH_ONLY, HumanReviewBlock)
#: What the test registry disables by configuration (one by id, one by name).
CONFIG_DISABLED = (ConfigDisabledByIdBlock.id, "configdisabledbynameblock")
