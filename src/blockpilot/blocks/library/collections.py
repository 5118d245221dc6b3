"""List and dictionary blocks: make, add to, look up."""

from __future__ import annotations

from typing import Any, List  # noqa: UP035 - a field named "list" hides the builtin in a class

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField

MAX_ITEMS = 100_000


class CreateListBlock(Block):
    id = "b33dbf7b-24d1-4a72-967c-041fa4a79641"
    effect = BlockEffect.READ
    description = "Makes a list from the given values."
    categories = frozenset({BlockCategory.DATA, BlockCategory.BASIC})

    class Input(BlockSchemaInput):
        values: List[Any] = SchemaField(  # noqa: UP006
            description="The values, in order", max_length=MAX_ITEMS
        )

    class Output(BlockSchemaOutput):
        list: List[Any] = SchemaField(description="The list")  # noqa: UP006

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        yield "list", list(input_data.values)


class CreateDictionaryBlock(Block):
    id = "bf08b84a-6cb4-47b3-bb30-69e6309f917f"
    effect = BlockEffect.READ
    description = "Makes a dictionary (an object of keys and values) from the given pairs."
    categories = frozenset({BlockCategory.DATA, BlockCategory.BASIC})

    class Input(BlockSchemaInput):
        values: dict[str, Any] = SchemaField(description="Keys and their values")

    class Output(BlockSchemaOutput):
        dictionary: dict[str, Any] = SchemaField(description="The dictionary")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        yield "dictionary", dict(input_data.values)


class AddToListBlock(Block):
    id = "709c9fd8-346e-41a1-b0fe-da720e5a199a"
    effect = BlockEffect.READ
    description = (
        "Adds one value or several values to a list, at the end or at a position; returns "
        "the new list."
    )
    categories = frozenset({BlockCategory.DATA, BlockCategory.BASIC})

    class Input(BlockSchemaInput):
        list: List[Any] = SchemaField(  # noqa: UP006
            default_factory=lambda: [], description="The list to add to", max_length=MAX_ITEMS
        )
        entry: Any = SchemaField(default=None, description="One value to add")
        entries: List[Any] = SchemaField(  # noqa: UP006
            default_factory=lambda: [], description="Several values to add", max_length=MAX_ITEMS
        )
        position: Integer | None = SchemaField(
            default=None, description="Index to insert at (negative from the end); the end if empty"
        )

    class Output(BlockSchemaOutput):
        updated_list: List[Any] = SchemaField(description="The list with the values")  # noqa: UP006

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        added = ([input_data.entry] if input_data.entry is not None else []) + input_data.entries
        items = list(input_data.list)
        if len(items) + len(added) > MAX_ITEMS:
            yield "error", f"The list would have more than {MAX_ITEMS:,} items"
            return
        at = len(items) if input_data.position is None else input_data.position
        if at < 0:
            at = max(0, len(items) + at + 1)
        items[at:at] = added
        yield "updated_list", items


class AddToDictionaryBlock(Block):
    id = "fc533517-1a04-453c-9b46-a68043be57ec"
    effect = BlockEffect.READ
    description = (
        "Adds or replaces keys (fields) of a dictionary (object); returns the new dictionary."
    )
    categories = frozenset({BlockCategory.DATA, BlockCategory.BASIC})

    class Input(BlockSchemaInput):
        dictionary: dict[str, Any] = SchemaField(
            default_factory=dict, description="The dictionary to add to"
        )
        key: str = SchemaField(default="", description="One key to set", max_length=1000)
        value: Any = SchemaField(default=None, description="Its value")
        entries: dict[str, Any] = SchemaField(
            default_factory=dict, description="Several keys and values to set"
        )

    class Output(BlockSchemaOutput):
        updated_dictionary: dict[str, Any] = SchemaField(description="The new dictionary")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        updated = dict(input_data.dictionary)
        if input_data.key:
            updated[input_data.key] = input_data.value
        updated.update(input_data.entries)
        yield "updated_dictionary", updated


class FindInDictionaryBlock(Block):
    id = "475bf73f-7b5c-41d8-bd6c-e54353f02797"
    effect = BlockEffect.READ
    description = (
        "Looks up a key in a dictionary (or a field in each object of a list); outputs the "
        "value, or 'missing'."
    )
    categories = frozenset({BlockCategory.DATA, BlockCategory.BASIC})

    class Input(BlockSchemaInput):
        input: Any = SchemaField(description="A dictionary, or a list of dictionaries")
        key: str = SchemaField(description="The key to look up", max_length=1000)

    class Output(BlockSchemaOutput):
        output: Any = SchemaField(description="The value found")
        missing: Any = SchemaField(description="The input, when the key is not there")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        data, key = input_data.input, input_data.key
        if isinstance(data, dict) and key in data:
            yield "output", data[key]
        elif (
            isinstance(data, list)
            and key.lstrip("-").isdigit()
            and -len(data) <= int(key) < len(data)
        ):
            yield "output", data[int(key)]
        elif isinstance(data, list) and any(isinstance(i, dict) and key in i for i in data):
            yield "output", [i[key] for i in data if isinstance(i, dict) and key in i]
        else:
            yield "missing", data


class FindInListBlock(Block):
    id = "b297d9cc-4b11-4f7c-b57a-3b883538d5fc"
    effect = BlockEffect.READ
    description = "Finds a value in a list; outputs its index, or 'not_found_value'."
    categories = frozenset({BlockCategory.DATA, BlockCategory.BASIC})

    class Input(BlockSchemaInput):
        list: List[Any] = SchemaField(  # noqa: UP006
            description="The list to search", max_length=MAX_ITEMS
        )
        value: Any = SchemaField(description="The value to find")

    class Output(BlockSchemaOutput):
        index: Integer = SchemaField(description="Index of the first equal item")
        found: bool = SchemaField(description="Whether the value is in the list")
        not_found_value: Any = SchemaField(description="The value, when it is not in the list")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        try:
            index = input_data.list.index(input_data.value)
        except ValueError:
            yield "found", False
            yield "not_found_value", input_data.value
            return
        yield "index", index
        yield "found", True


class GetListItemBlock(Block):
    id = "a3f43bd4-e066-47b4-8af3-90d27902baca"
    effect = BlockEffect.READ
    description = "Gets the item at a position of a list (0 is the first, -1 the last)."
    categories = frozenset({BlockCategory.DATA, BlockCategory.BASIC})

    class Input(BlockSchemaInput):
        list: List[Any] = SchemaField(  # noqa: UP006
            description="The list", max_length=MAX_ITEMS
        )
        index: Integer = SchemaField(description="Position (negative counts from the end)")

    class Output(BlockSchemaOutput):
        item: Any = SchemaField(description="The item at that position")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        items = input_data.list
        if not -len(items) <= input_data.index < len(items):
            yield "error", f"Index {input_data.index} is outside the list of {len(items)} items"
            return
        yield "item", items[input_data.index]
