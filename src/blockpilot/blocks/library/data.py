"""Data blocks: JSON, CSV, XML and HTML parsing, base64, hashing and unit conversion.

All run locally on the given text (nothing is fetched) with size caps; XML is parsed with
``defusedxml``, which refuses entity declarations and external references (no billion
laughs, no reading of local files).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import csv
import hashlib
import hmac
import io
import json
import re
from typing import Any, Literal

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.library._html import html_to_markdown
from blockpilot.blocks.schema import (
    BlockSchemaInput,
    BlockSchemaOutput,
    Integer,
    Number,
    SchemaField,
)

MAX_INPUT = 2_000_000
MAX_ROWS = 10_000
MAX_DEPTH = 100
_PATH_TOKEN = re.compile(r"\.?([^.\[\]]+)|\[(-?\d+)\]|\[['\"]([^'\"]*)['\"]\]")


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


class ParseJsonBlock(Block):
    id = "9fbd6f09-e13c-43ac-8d31-1236a4215d1a"
    effect = BlockEffect.READ
    description = "Parses a JSON text into data (object, list, number…) that other blocks can use."
    categories = frozenset({BlockCategory.DATA})

    class Input(BlockSchemaInput):
        json_string: str = SchemaField(
            description="The JSON text", min_length=1, max_length=MAX_INPUT
        )

    class Output(BlockSchemaOutput):
        parsed: Any = SchemaField(description="The parsed data")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        try:
            parsed = json.loads(input_data.json_string)
        except (json.JSONDecodeError, RecursionError) as exc:
            message = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            where = (
                f" at line {exc.lineno} column {exc.colno}"
                if isinstance(exc, json.JSONDecodeError)
                else ""
            )
            yield "error", f"Not valid JSON: {message}{where}"
            return
        if _depth(parsed) > MAX_DEPTH:
            yield "error", f"The JSON is nested more than {MAX_DEPTH} levels deep"
            return
        yield "parsed", parsed


def parse_path(path: str) -> list[str | int]:
    """``$.a.b[0]['c d']`` or ``a.b.0`` → ``["a", "b", 0, "c d"]``."""
    text = path.strip()
    text = text[1:] if text.startswith("$") else text
    steps: list[str | int] = []
    position = 0
    while position < len(text):
        match = _PATH_TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"Invalid path near {text[position : position + 20]!r}; use a.b[0].c")
        name, index, quoted = match.groups()
        if index is not None:
            steps.append(int(index))
        elif quoted is not None:
            steps.append(quoted)
        else:
            steps.append(int(name) if name.lstrip("-").isdigit() else name)
        position = match.end()
    return steps


class ExtractJsonPathBlock(Block):
    id = "33986a81-9abf-4b52-9136-4833d8605181"
    effect = BlockEffect.READ
    description = (
        "Gets a value out of JSON data by its path, e.g. user.addresses[0].city "
        "(accepts data or a JSON text)."
    )
    categories = frozenset({BlockCategory.DATA})

    class Input(BlockSchemaInput):
        data: Any = SchemaField(description="JSON data, or a JSON text")
        path: str = SchemaField(
            description="Path such as items[0].name or $.a.b ('' for the whole value)",
            max_length=1000,
        )

    class Output(BlockSchemaOutput):
        value: Any = SchemaField(description="The value at the path")
        found: bool = SchemaField(description="Whether the path exists")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        data = input_data.data
        if isinstance(data, str):
            with contextlib.suppress(json.JSONDecodeError):  # a plain string is data too
                data = json.loads(data)
        current = data
        for step in parse_path(input_data.path):
            if isinstance(current, dict) and str(step) in current:
                current = current[str(step)]
            elif (
                isinstance(current, list)
                and isinstance(step, int)
                and -len(current) <= step < len(current)
            ):
                current = current[step]
            else:
                yield "value", None
                yield "found", False
                return
        yield "value", current
        yield "found", True


class ReadCsvBlock(Block):
    id = "6f2475c7-0b9f-48a5-ab69-62723ed534c4"
    effect = BlockEffect.READ
    description = (
        "Reads CSV (comma-separated values) text or a table into rows: objects by column name "
        "(with a header row) or lists."
    )
    categories = frozenset({BlockCategory.DATA, BlockCategory.TEXT})

    class Input(BlockSchemaInput):
        contents: str = SchemaField(description="The CSV text", max_length=MAX_INPUT)
        delimiter: str = SchemaField(
            default=",", description="Column separator", min_length=1, max_length=2
        )
        quotechar: str = SchemaField(
            default='"', description="Quote character", min_length=1, max_length=1
        )
        has_header: bool = SchemaField(default=True, description="The first row names the columns")
        skip_rows: Integer = SchemaField(
            default=0, ge=0, le=MAX_ROWS, description="Rows to skip first"
        )
        strip: bool = SchemaField(default=True, description="Trim spaces around values")
        max_rows: Integer = SchemaField(
            default=1000, ge=1, le=MAX_ROWS, description="Most rows to return"
        )

    class Output(BlockSchemaOutput):
        all_data: list[Any] = SchemaField(description="The rows")
        row_count: Integer = SchemaField(description="How many rows were read")
        truncated: bool = SchemaField(description="True when there were more rows than max_rows")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        delimiter = input_data.delimiter.replace("\\t", "\t")
        if len(delimiter) != 1:
            yield "error", "delimiter must be one character (\\t for tab)"
            return
        reader = csv.reader(
            io.StringIO(input_data.contents), delimiter=delimiter, quotechar=input_data.quotechar
        )
        rows: list[Any] = []
        header: list[str] | None = None
        truncated = False
        try:
            for number, row in enumerate(reader):
                if number < input_data.skip_rows:
                    continue
                values = [v.strip() for v in row] if input_data.strip else row
                if input_data.has_header and header is None:
                    header = values
                    continue
                if len(rows) >= input_data.max_rows:
                    truncated = True
                    break
                if header is not None:
                    named = dict(zip(header, values, strict=False))
                    for extra, value in enumerate(values[len(header) :]):
                        named[f"column_{len(header) + extra + 1}"] = value
                    rows.append(named)
                else:
                    rows.append(values)
        except csv.Error as exc:
            yield "error", f"Not valid CSV: {exc}"
            return
        yield "all_data", rows
        yield "row_count", len(rows)
        yield "truncated", truncated


def _xml_to_data(element: Any) -> Any:
    children = list(element)
    text = (element.text or "").strip()
    if not children and not element.attrib:
        return text
    result: dict[str, Any] = {f"@{k}": v for k, v in element.attrib.items()}
    for child in children:
        tag = child.tag.split("}", 1)[-1]
        value = _xml_to_data(child)
        if tag in result:
            existing = result[tag]
            result[tag] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            result[tag] = value
    if text:
        result["#text"] = text
    return result


class XMLParserBlock(Block):
    id = "3e0086a2-583c-4761-917c-687c00b93e97"
    effect = BlockEffect.READ
    description = (
        "Parses XML text into nested data (elements as keys, attributes as @name, repeated "
        "elements as lists)."
    )
    categories = frozenset({BlockCategory.DATA})

    class Input(BlockSchemaInput):
        input_xml: str = SchemaField(description="The XML text", min_length=1, max_length=MAX_INPUT)

    class Output(BlockSchemaOutput):
        parsed_xml: dict[str, Any] = SchemaField(description="The root element's name → its data")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        from defusedxml import DefusedXmlException
        from defusedxml.ElementTree import ParseError, fromstring

        try:
            root = fromstring(input_data.input_xml, forbid_dtd=True)
        except DefusedXmlException:
            yield "error", "XML with a DOCTYPE, entities or external references is refused"
            return
        except ParseError as exc:
            yield "error", f"Not valid XML: {exc}"
            return
        yield "parsed_xml", {root.tag.split("}", 1)[-1]: _xml_to_data(root)}


class ParseHtmlBlock(Block):
    id = "a2c1bc28-ee63-4697-a12b-1eb206c34eea"
    effect = BlockEffect.READ
    description = (
        "Turns HTML into clean readable text (Markdown) without scripts or styles, and lists "
        "its links and title."
    )
    categories = frozenset({BlockCategory.TEXT, BlockCategory.DATA})

    class Input(BlockSchemaInput):
        html: str = SchemaField(description="The HTML text", max_length=MAX_INPUT)
        base_url: str = SchemaField(
            default="", description="URL the HTML came from (for links)", max_length=2048
        )
        keep_links: bool = SchemaField(default=True, description="Keep links as [text](url)")

    class Output(BlockSchemaOutput):
        text: str = SchemaField(description="The readable text, as Markdown")
        title: str = SchemaField(description="The page title")
        links: list[dict[str, str]] = SchemaField(description="Links: text and url")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        page = html_to_markdown(
            input_data.html, input_data.base_url, keep_links=input_data.keep_links
        )
        yield "text", page["text"]
        yield "title", page["title"]
        yield "links", page["links"][:500]


class Base64EncodeBlock(Block):
    id = "49367cb0-a815-4cf5-89d7-461da28bed09"
    effect = BlockEffect.READ
    description = "Encodes text as base64 (standard or URL-safe)."
    categories = frozenset({BlockCategory.TEXT, BlockCategory.DATA})

    class Input(BlockSchemaInput):
        text: str = SchemaField(description="Text to encode (as UTF-8)", max_length=MAX_INPUT)
        url_safe: bool = SchemaField(default=False, description="Use - and _ instead of + and /")

    class Output(BlockSchemaOutput):
        encoded: str = SchemaField(description="The base64 text")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        raw = input_data.text.encode()
        encode = base64.urlsafe_b64encode if input_data.url_safe else base64.b64encode
        yield "encoded", encode(raw).decode("ascii")


class Base64DecodeBlock(Block):
    id = "2b161f9a-1b80-48be-a49f-f9624f9cf1b4"
    effect = BlockEffect.READ
    description = "Decodes base64 (standard or URL-safe) back into text."
    categories = frozenset({BlockCategory.TEXT, BlockCategory.DATA})

    class Input(BlockSchemaInput):
        encoded: str = SchemaField(description="The base64 text", max_length=MAX_INPUT)

    class Output(BlockSchemaOutput):
        text: str = SchemaField(description="The decoded text (UTF-8; bad bytes become �)")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        cleaned = "".join(input_data.encoded.split()).replace("-", "+").replace("_", "/")
        cleaned += "=" * (-len(cleaned) % 4)
        try:
            raw = base64.b64decode(cleaned, validate=True)
        except (binascii.Error, ValueError):
            yield "error", "Not valid base64: use A-Z, a-z, 0-9, +, / (or -, _) and = padding"
            return
        yield "text", raw.decode("utf-8", errors="replace")


HashAlgorithm = Literal["md5", "sha1", "sha256", "sha512", "sha3_256", "blake2b"]


class HashTextBlock(Block):
    id = "5bc2c44a-b42b-4192-9431-12d26279e58a"
    effect = BlockEffect.READ
    description = (
        "Computes a hash (SHA-256, MD5, SHA-1, SHA-512…) of a text, or an HMAC with a key."
    )
    categories = frozenset({BlockCategory.TEXT, BlockCategory.DATA})

    class Input(BlockSchemaInput):
        text: str = SchemaField(description="Text to hash (as UTF-8)", max_length=MAX_INPUT)
        algorithm: HashAlgorithm = SchemaField(default="sha256", description="Hash algorithm")
        hmac_key: str = SchemaField(
            default="", description="Key for an HMAC; a plain hash if empty", max_length=1000
        )

    class Output(BlockSchemaOutput):
        hash: str = SchemaField(description="The hash as lower-case hex")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        raw = input_data.text.encode()
        if input_data.hmac_key:
            digest = hmac.new(input_data.hmac_key.encode(), raw, input_data.algorithm).hexdigest()
        else:
            digest = hashlib.new(input_data.algorithm, raw).hexdigest()
        yield "hash", digest


# unit -> (dimension, factor to the dimension's base unit)
_UNITS: dict[str, tuple[str, float]] = {
    # length (metre)
    "mm": ("length", 0.001), "cm": ("length", 0.01), "m": ("length", 1.0),
    "km": ("length", 1000.0), "in": ("length", 0.0254), "ft": ("length", 0.3048),
    "yd": ("length", 0.9144), "mi": ("length", 1609.344), "nmi": ("length", 1852.0),
    # mass (kilogram)
    "mg": ("mass", 1e-6), "g": ("mass", 0.001), "kg": ("mass", 1.0), "t": ("mass", 1000.0),
    "oz": ("mass", 0.028349523125), "lb": ("mass", 0.45359237), "st": ("mass", 6.35029318),
    # volume (litre)
    "ml": ("volume", 0.001), "l": ("volume", 1.0), "m3": ("volume", 1000.0),
    "tsp": ("volume", 0.00492892159375), "tbsp": ("volume", 0.01478676478125),
    "cup": ("volume", 0.2365882365), "floz": ("volume", 0.0295735295625),
    "pt": ("volume", 0.473176473), "qt": ("volume", 0.946352946), "gal": ("volume", 3.785411784),
    # time (second)
    "ms": ("time", 0.001), "s": ("time", 1.0), "min": ("time", 60.0), "h": ("time", 3600.0),
    "day": ("time", 86400.0), "week": ("time", 604800.0),
    # speed (metre per second)
    "m/s": ("speed", 1.0), "km/h": ("speed", 1000 / 3600), "mph": ("speed", 0.44704),
    "knot": ("speed", 1852 / 3600),
    # area (square metre)
    "m2": ("area", 1.0), "km2": ("area", 1e6), "ha": ("area", 1e4), "acre": ("area", 4046.8564224),
    "ft2": ("area", 0.09290304),
    # data (byte)
    "b": ("data", 1.0), "kb": ("data", 1e3), "mb": ("data", 1e6), "gb": ("data", 1e9),
    "tb": ("data", 1e12), "kib": ("data", 1024.0), "mib": ("data", 1024.0**2),
    "gib": ("data", 1024.0**3), "bit": ("data", 0.125),
    # energy (joule)
    "j": ("energy", 1.0), "kj": ("energy", 1e3), "cal": ("energy", 4.184),
    "kcal": ("energy", 4184.0), "kwh": ("energy", 3.6e6),
}  # fmt: skip
_ALIASES = {
    "meter": "m", "meters": "m", "metre": "m", "kilometer": "km", "kilometers": "km",
    "mile": "mi", "miles": "mi", "foot": "ft", "feet": "ft", "inch": "in", "inches": "in",
    "yard": "yd", "yards": "yd", "gram": "g", "grams": "g", "kilogram": "kg", "kilograms": "kg",
    "pound": "lb", "pounds": "lb", "lbs": "lb", "ounce": "oz", "ounces": "oz", "liter": "l",
    "litre": "l", "liters": "l", "gallon": "gal", "gallons": "gal", "second": "s", "seconds": "s",
    "minute": "min", "minutes": "min", "hour": "h", "hours": "h", "days": "day", "weeks": "week",
    "kph": "km/h", "knots": "knot", "celsius": "c", "fahrenheit": "f", "kelvin": "k",
    "°c": "c", "°f": "f",
}  # fmt: skip
_TEMPERATURE = {"c", "f", "k"}


def _unit(name: str) -> str:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _UNITS and key not in _TEMPERATURE:
        raise ValueError(
            f"Unknown unit {name!r}; known units: {', '.join(sorted([*_UNITS, *_TEMPERATURE]))}"
        )
    return key


def _to_kelvin(value: float, unit: str) -> float:
    return {"c": value + 273.15, "f": (value - 32) * 5 / 9 + 273.15, "k": value}[unit]


def _from_kelvin(value: float, unit: str) -> float:
    return {"c": value - 273.15, "f": (value - 273.15) * 9 / 5 + 32, "k": value}[unit]


class ConvertUnitsBlock(Block):
    id = "c1aaea15-c9b0-4f27-b838-b245bed2f4ce"
    effect = BlockEffect.READ
    description = (
        "Converts a number between units of length, mass, volume, temperature, time, speed, "
        "area, data size or energy (e.g. miles to km, °F to °C)."
    )
    categories = frozenset({BlockCategory.BASIC, BlockCategory.DATA})

    class Input(BlockSchemaInput):
        value: Number = SchemaField(description="The number to convert")
        from_unit: str = SchemaField(
            description="Unit of the value, e.g. mi, kg, F, GB", max_length=30
        )
        to_unit: str = SchemaField(
            description="Unit to convert to, e.g. km, lb, C, MiB", max_length=30
        )

    class Output(BlockSchemaOutput):
        result: float = SchemaField(description="The converted value")

    async def run(self, input_data: Input, **kwargs: Any) -> BlockOutput:
        source, target = _unit(input_data.from_unit), _unit(input_data.to_unit)
        if source in _TEMPERATURE or target in _TEMPERATURE:
            if not (source in _TEMPERATURE and target in _TEMPERATURE):
                yield "error", f"Cannot convert {input_data.from_unit} to {input_data.to_unit}"
                return
            yield "result", _from_kelvin(_to_kelvin(input_data.value, source), target)
            return
        (kind, factor), (target_kind, target_factor) = _UNITS[source], _UNITS[target]
        if kind != target_kind:
            yield (
                "error",
                f"Cannot convert {kind} ({input_data.from_unit}) to "
                f"{target_kind} ({input_data.to_unit})",
            )
            return
        yield "result", input_data.value * factor / target_factor
