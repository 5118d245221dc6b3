"""Text blocks: regular-expression match, extract and replace, split, join, count.

Patterns come from a model, so they run on the ``regex`` module with a time limit: a
pattern with catastrophic backtracking (``(a+)+$``) fails with a clear message instead of
holding a worker (docs/blocks-catalogue.md). Inputs are capped in size.
"""

from __future__ import annotations

from typing import Any

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField

MAX_TEXT = 1_000_000
MAX_PATTERN = 2_000
REGEX_TIMEOUT_SECONDS = 1.0
MAX_MATCHES = 1_000


def compile_pattern(pattern: str, *, case_sensitive: bool = True, dot_all: bool = False) -> Any:
    """Compile *pattern* with the ``regex`` module; a bad pattern raises ``ValueError``."""
    import regex  # lazily: only text blocks need it

    flags = regex.VERSION0
    if not case_sensitive:
        flags |= regex.IGNORECASE
    if dot_all:
        flags |= regex.DOTALL
    try:
        return regex.compile(pattern, flags)
    except regex.error as exc:
        raise ValueError(f"Invalid regular expression: {exc}") from None


def guarded(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a ``regex`` call with the time limit; too slow raises ``ValueError``."""
    try:
        return call(*args, timeout=REGEX_TIMEOUT_SECONDS, **kwargs)
    except TimeoutError:
        raise ValueError(
            f"The regular expression took longer than {REGEX_TIMEOUT_SECONDS:g}s on this text "
            "(catastrophic backtracking?); simplify the pattern"
        ) from None


def _text(value: Any) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) > MAX_TEXT:
        raise ValueError(f"The text is longer than {MAX_TEXT:,} characters")
    return text


class MatchTextPatternBlock(Block):
    id = "e8a46239-c728-4822-bbde-a46ac4874a25"
    effect = BlockEffect.READ
    description = (
        "Checks whether a text matches a regular expression; routes the data to 'positive' "
        "(match) or 'negative' (no match)."
    )
    categories = frozenset({BlockCategory.TEXT, BlockCategory.LOGIC})

    class Input(BlockSchemaInput):
        text: Any = SchemaField(description="Text to match")
        match: str = SchemaField(
            description="Regular expression to look for", min_length=1, max_length=MAX_PATTERN
        )
        data: Any = SchemaField(default=None, description="Data to pass on; the text if empty")
        case_sensitive: bool = SchemaField(default=True, description="Match case")
        dot_all: bool = SchemaField(default=True, description="'.' also matches line breaks")

    class Output(BlockSchemaOutput):
        positive: Any = SchemaField(description="The data, when the text matched")
        negative: Any = SchemaField(description="The data, when it did not")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        text = _text(input_data.text)
        pattern = compile_pattern(
            input_data.match,
            case_sensitive=input_data.case_sensitive,
            dot_all=input_data.dot_all,
        )
        data = input_data.data if input_data.data is not None else input_data.text
        if guarded(pattern.search, text) is not None:
            yield "positive", data
        else:
            yield "negative", data


class ExtractTextInformationBlock(Block):
    id = "f94ff32f-fde5-4a52-8bea-05cd577d5e85"
    effect = BlockEffect.READ
    description = (
        "Extracts (pulls out) parts of a text, such as numbers or e-mail addresses, with a "
        "regular expression: the first match or all matches."
    )
    categories = frozenset({BlockCategory.TEXT})

    class Input(BlockSchemaInput):
        text: Any = SchemaField(description="Text to search")
        pattern: str = SchemaField(
            description="Regular expression, e.g. (\\d+)-(\\d+)",
            min_length=1,
            max_length=MAX_PATTERN,
        )
        group: Integer = SchemaField(
            default=0, ge=0, le=100, description="Capture group to return (0: the whole match)"
        )
        case_sensitive: bool = SchemaField(default=True, description="Match case")
        dot_all: bool = SchemaField(default=True, description="'.' also matches line breaks")
        find_all: bool = SchemaField(default=False, description="Return every match")

    class Output(BlockSchemaOutput):
        positive: str = SchemaField(description="The first extracted text")
        negative: str = SchemaField(description="The text, when nothing matched")
        matched_results: list[str] = SchemaField(description="All extracted texts")
        matched_count: Integer = SchemaField(description="How many matches")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        text = _text(input_data.text)
        pattern = compile_pattern(
            input_data.pattern,
            case_sensitive=input_data.case_sensitive,
            dot_all=input_data.dot_all,
        )
        if input_data.group > pattern.groups:
            yield "error", f"The pattern has {pattern.groups} group(s), not {input_data.group}"
            return
        found: list[str] = []
        for match in guarded(pattern.finditer, text):
            found.append(match.group(input_data.group) or "")
            if not input_data.find_all or len(found) >= MAX_MATCHES:
                break
        if not found:
            yield "negative", text
            return
        yield "positive", found[0]
        yield "matched_results", found
        yield "matched_count", len(found)


class TextReplaceBlock(Block):
    id = "4bd968bb-bee7-4351-8f2a-79098b923a44"
    effect = BlockEffect.READ
    description = (
        "Replaces (swaps) every occurrence of a word or piece of text in a string with another "
        "(plain text, no regex)."
    )
    categories = frozenset({BlockCategory.TEXT})

    class Input(BlockSchemaInput):
        text: str = SchemaField(description="The text", max_length=MAX_TEXT)
        old: str = SchemaField(description="Text to replace", min_length=1, max_length=10_000)
        new: str = SchemaField(default="", description="Replacement", max_length=10_000)

    class Output(BlockSchemaOutput):
        output: str = SchemaField(description="The text after replacing")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        count = input_data.text.count(input_data.old)
        if len(input_data.text) + count * (len(input_data.new) - len(input_data.old)) > MAX_TEXT:
            yield "error", f"The result would be longer than {MAX_TEXT:,} characters"
            return
        yield "output", input_data.text.replace(input_data.old, input_data.new)


class RegexReplaceBlock(Block):
    id = "1f1f0f96-3bc2-46cc-816d-5c5500deca4a"
    effect = BlockEffect.READ
    description = (
        "Regex substitution: replaces the matches of a regular expression in a text; the "
        "replacement may use groups such as \\1 or \\g<name>."
    )
    categories = frozenset({BlockCategory.TEXT})

    class Input(BlockSchemaInput):
        text: str = SchemaField(description="The text", max_length=MAX_TEXT)
        pattern: str = SchemaField(
            description="Regular expression to replace", min_length=1, max_length=MAX_PATTERN
        )
        replacement: str = SchemaField(default="", description="Replacement", max_length=10_000)
        case_sensitive: bool = SchemaField(default=True, description="Match case")
        max_replacements: Integer = SchemaField(
            default=0, ge=0, le=1_000_000, description="Most replacements (0: all)"
        )

    class Output(BlockSchemaOutput):
        output: str = SchemaField(description="The text after replacing")
        count: Integer = SchemaField(description="How many replacements were made")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        pattern = compile_pattern(input_data.pattern, case_sensitive=input_data.case_sensitive)
        try:
            output, count = guarded(
                pattern.subn,
                input_data.replacement,
                input_data.text,
                count=input_data.max_replacements,
            )
        except (IndexError, KeyError) as exc:
            raise ValueError(f"The replacement refers to a missing group: {exc}") from None
        except Exception as exc:  # regex.error for a bad template
            if type(exc).__name__ == "error":
                raise ValueError(f"Invalid replacement: {exc}") from None
            raise
        if len(output) > MAX_TEXT:
            yield "error", f"The result would be longer than {MAX_TEXT:,} characters"
            return
        yield "output", output
        yield "count", count


class SplitTextBlock(Block):
    id = "04b33ea9-dc62-4773-a658-a0856061b521"
    effect = BlockEffect.READ
    description = (
        "Splits a text into a list of parts at a delimiter (e.g. a comma or a line break)."
    )
    categories = frozenset({BlockCategory.TEXT})

    class Input(BlockSchemaInput):
        text: str = SchemaField(description="The text to split", max_length=MAX_TEXT)
        delimiter: str = SchemaField(
            default=",", description="Where to split; \\n for lines", min_length=1, max_length=100
        )
        strip: bool = SchemaField(default=True, description="Trim spaces around each part")

    class Output(BlockSchemaOutput):
        texts: list[str] = SchemaField(description="The parts")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        delimiter = input_data.delimiter.replace("\\n", "\n").replace("\\t", "\t")
        if not input_data.text:
            yield "texts", []
            return
        parts = input_data.text.split(delimiter)
        yield "texts", [p.strip() for p in parts] if input_data.strip else parts


class CombineTextsBlock(Block):
    id = "56e18a62-ebb3-45ed-a06e-f7ac2097f5af"
    effect = BlockEffect.READ
    description = "Joins a list of texts into one text with a delimiter between them."
    categories = frozenset({BlockCategory.TEXT})

    class Input(BlockSchemaInput):
        input: list[Any] = SchemaField(description="Texts to join, in order", max_length=100_000)
        delimiter: str = SchemaField(default="", description="Put between texts", max_length=100)

    class Output(BlockSchemaOutput):
        output: str = SchemaField(description="The joined text")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        delimiter = input_data.delimiter.replace("\\n", "\n").replace("\\t", "\t")
        joined = delimiter.join("" if v is None else str(v) for v in input_data.input)
        if len(joined) > MAX_TEXT:
            yield "error", f"The result would be longer than {MAX_TEXT:,} characters"
            return
        yield "output", joined


class WordCharacterCountBlock(Block):
    id = "f4156867-91f7-4a23-9ee1-c888fcf227f7"
    effect = BlockEffect.READ
    description = "Counts the words, characters, lines and sentences of a text."
    categories = frozenset({BlockCategory.TEXT})

    class Input(BlockSchemaInput):
        text: str = SchemaField(description="The text to count", max_length=MAX_TEXT)

    class Output(BlockSchemaOutput):
        word_count: Integer = SchemaField(description="Words (separated by white space)")
        character_count: Integer = SchemaField(description="Characters, spaces included")
        line_count: Integer = SchemaField(description="Lines")
        sentence_count: Integer = SchemaField(description="Sentences (ending in . ! or ?)")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        import re

        text = input_data.text
        yield "word_count", len(text.split())
        yield "character_count", len(text)
        yield "line_count", len(text.splitlines())
        yield "sentence_count", len([s for s in re.split(r"[.!?]+(?:\s|$)", text) if s.strip()])
