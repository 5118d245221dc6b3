"""The Block base class: typed inputs and outputs around an async generator ``run``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from enum import Enum
from functools import cache
from typing import Any, ClassVar

from pydantic import ValidationError

from blockpilot.blocks.schema import BlockSchema, BlockSchemaInput, BlockSchemaOutput
from blockpilot.errors import BlockError, BlockExecutionError, BlockInputError, BlockOutputError

BlockOutputEntry = tuple[str, Any]
BlockOutput = AsyncIterator[BlockOutputEntry]
CompletedBlockOutput = dict[str, list[Any]]


class BlockType(str, Enum):  # noqa: UP042 - StrEnum would change str() and format()
    STANDARD = "Standard"
    INPUT = "Input"
    OUTPUT = "Output"
    NOTE = "Note"
    WEBHOOK = "Webhook"
    WEBHOOK_MANUAL = "Webhook (manual)"
    AGENT = "Agent"
    AI = "AI"
    HUMAN_IN_THE_LOOP = "Human In The Loop"
    MCP_TOOL = "MCP Tool"


class BlockEffect(str, Enum):  # noqa: UP042 - StrEnum would change str() and format()
    """What running a block does to the world, for approvals and policies (docs/blocks.md).

    ``read`` changes nothing outside blockpilot; ``write`` creates or changes something
    (sends a message, makes an issue, writes a file); ``destructive`` deletes, merges or
    overwrites in a way that is hard to undo. A block that does not say is a ``write``:
    an unknown effect is never treated as harmless.
    """

    READ = "read"
    WRITE = "write"
    DESTRUCTIVE = "destructive"


class BlockCategory(str, Enum):  # noqa: UP042 - StrEnum would change str() and format()
    AI = "Block that leverages AI to perform a task."
    SOCIAL = "Block that interacts with social media platforms."
    TEXT = "Block that processes text data."
    SEARCH = "Block that searches or extracts information from the internet."
    BASIC = "Block that performs basic operations."
    INPUT = "Block that interacts with input of the graph."
    OUTPUT = "Block that interacts with output of the graph."
    LOGIC = "Programming logic to control the flow of your agent."
    COMMUNICATION = "Block that interacts with communication platforms."
    DEVELOPER_TOOLS = "Developer tools such as GitHub blocks."
    DATA = "Block that interacts with structured data."
    HARDWARE = "Block that interacts with hardware."
    AGENT = "Block that interacts with other agents."
    CRM = "Block that interacts with CRM services."
    SAFETY = "Block that provides AI safety mechanisms."
    PRODUCTIVITY = "Block that helps with productivity."
    ISSUE_TRACKING = "Block that helps with issue tracking."
    MULTIMEDIA = "Block that interacts with multimedia content."
    MARKETING = "Block that helps with marketing."


def validation_errors(exc: ValidationError) -> dict[str, list[str]]:
    """Per-field messages a model can act on (input values are never echoed)."""
    errors: dict[str, list[str]] = {}
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(part) for part in err["loc"]) or "input_data"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        errors.setdefault(loc, []).append(message)
    return errors


class Block(ABC):
    """A unit of work with typed inputs and outputs.

    Subclasses set the class attributes and implement :meth:`run`, an async generator
    yielding ``(output_name, value)`` pairs. Credentials arrive as keyword arguments named
    after the credentials fields; blocks never read credentials from anywhere else.

    Example::

        class UpperBlock(Block):
            id = "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b10"
            description = "Upper-case a text."
            categories = frozenset({BlockCategory.TEXT})

            class Input(BlockSchemaInput):
                text: str = SchemaField(description="Text to transform")

            class Output(BlockSchemaOutput):
                result: str = SchemaField(description="The upper-cased text")

            async def run(self, input_data, **kwargs):
                yield "result", input_data.text.upper()
    """

    id: ClassVar[str]
    description: ClassVar[str]
    categories: ClassVar[frozenset[BlockCategory]] = frozenset({BlockCategory.BASIC})
    block_type: ClassVar[BlockType] = BlockType.STANDARD
    disabled: ClassVar[bool] = False
    timeout_seconds: ClassVar[float | None] = None
    effect: ClassVar[BlockEffect] = BlockEffect.WRITE
    Input: ClassVar[type[BlockSchemaInput]]
    Output: ClassVar[type[BlockSchemaOutput]]
    # Providers (or block sources) whose operator-set base URL this block may reach even on
    # a private network. None: the providers of its credentials fields. Generic blocks that
    # request any URL set frozenset() (docs/security.md, "Operator base URLs").
    trusted_scopes: ClassVar[frozenset[str] | None] = None

    @classmethod
    def network_scopes(cls) -> frozenset[str]:
        """The scopes whose operator-set destinations this block's runs may reach."""
        if cls.trusted_scopes is not None:
            return cls.trusted_scopes
        return _credentials_providers(cls.Input)

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def input_schema(self) -> type[BlockSchemaInput]:
        return self.Input

    @property
    def output_schema(self) -> type[BlockSchemaOutput]:
        return self.Output

    @abstractmethod
    def run(self, input_data: Any, **kwargs: Any) -> BlockOutput:
        """Do the work, yielding ``(output_name, value)`` pairs."""

    def validate_input(self, input_data: dict[str, Any]) -> BlockSchema:
        """Build the typed input; raise :class:`BlockInputError` with per-field errors."""
        try:
            return self.Input.model_validate(input_data)
        except ValidationError as exc:
            errors = validation_errors(exc)
            summary = "; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items())
            raise BlockInputError(
                f"Invalid input for {self.name}: {summary}",
                block_name=self.name,
                block_id=self.id,
                details={"errors": errors},
            ) from None

    async def execute(self, input_data: dict[str, Any] | BlockSchema, **kwargs: Any) -> BlockOutput:
        """Validate the input, run, validate each output pin; an ``error`` pin fails the run."""
        typed = (
            input_data if isinstance(input_data, BlockSchema) else self.validate_input(input_data)
        )
        outputs = self.Output.field_names()
        try:
            async for name, value in self.run(typed, **kwargs):
                yield name, self._checked_output(outputs, name, value)
        except BlockError:
            raise
        except ValueError as exc:
            # Blocks signal bad values with ValueError; that is a block failure, not a bug.
            raise BlockExecutionError(str(exc), block_name=self.name, block_id=self.id) from exc

    async def collect_into(
        self, typed: BlockSchema, collected: CompletedBlockOutput, kwargs: dict[str, Any]
    ) -> None:
        """:meth:`execute` with a typed input and *kwargs* for :meth:`run`, adding each output
        to *collected* as it comes (what was added before a failure stays): the same checks,
        without a second generator around :meth:`run` (docs/performance.md). Used for blocks
        that keep :meth:`execute` as it is."""
        outputs = self.Output.field_names()
        try:
            async for name, value in self.run(typed, **kwargs):
                checked = self._checked_output(outputs, name, value)  # a failed pin adds nothing
                collected.setdefault(name, []).append(checked)
        except BlockError:
            raise
        except ValueError as exc:
            raise BlockExecutionError(str(exc), block_name=self.name, block_id=self.id) from exc

    def _checked_output(self, outputs: frozenset[str], name: str, value: Any) -> Any:
        """*value* of output pin *name*, validated; an ``error`` pin or a pin the block does
        not declare fails the run."""
        if name == "error":
            raise BlockExecutionError(str(value), block_name=self.name, block_id=self.id)
        if name not in outputs:
            raise BlockOutputError(
                f"{self.name} produced an unknown output {name!r}",
                block_name=self.name,
                block_id=self.id,
            )
        try:
            return self.Output.field_adapter(name).validate_python(value)
        except ValidationError as exc:
            raise BlockOutputError(
                f"{self.name} produced an invalid value for output {name!r}: "
                f"{exc.errors(include_input=False)[0]['msg']}",
                block_name=self.name,
                block_id=self.id,
            ) from None

    async def run_collect(
        self, input_data: dict[str, Any] | BlockSchema, **kwargs: Any
    ) -> CompletedBlockOutput:
        """Run and gather every output pin as ``{name: [values...]}``."""
        collected: CompletedBlockOutput = {}
        async for name, value in self.execute(input_data, **kwargs):
            collected.setdefault(name, []).append(value)
        return collected

    def search_fields(self) -> tuple[tuple[str, str], ...]:
        """``(name, description)`` of every input and output, for search."""
        return tuple(
            (name, info.description or "")
            for schema in (self.Input, self.Output)
            for name, info in schema.model_fields.items()
            if name != "error"
        )

    def info(self) -> dict[str, Any]:
        """Public metadata of this block (no schemas)."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "categories": sorted(c.name for c in self.categories),
            "block_type": self.block_type.name,
            "effect": self.effect.value,
            "disabled": self.disabled,
        }


@cache
def _credentials_providers(schema: type[BlockSchemaInput]) -> frozenset[str]:
    """The providers *schema*'s credentials fields accept (cached: every run asks)."""
    fields = schema.credentials_fields()
    return frozenset(provider for info in fields.values() for provider in info.provider)


__all__ = [
    "Block",
    "BlockCategory",
    "BlockEffect",
    "BlockOutput",
    "BlockOutputEntry",
    "BlockType",
    "CompletedBlockOutput",
]
