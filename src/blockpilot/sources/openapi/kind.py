"""The ``openapi`` kind of source: a description's operations become blocks (docs/sources.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

from blockpilot.blocks.base import Block
from blockpilot.errors import InvalidInputError, SkipOperation, SpecError
from blockpilot.json_schema import convert_schema
from blockpilot.sources.base import ParsedSource, Skipped, SourceOptions, source_block_id
from blockpilot.sources.openapi._document import json_path, load_document
from blockpilot.sources.openapi._operations import (
    HTTP_METHODS,
    convert_operation,
    security_plan,
)
from blockpilot.sources.openapi.block import (
    OpenAPIOperationBlock,
    field_pairs,
    operation_input_schema,
    stored_fields,
    stored_json,
    swap_quotes,
)
from blockpilot.storage.sources import SourceRecord

# Format 3 stores the operations as columns (docs/sources.md#stored-form): a start-up reads
# lists of strings, not 100,000 nested objects. Format 2 (a list of summaries plus the full
# operations as JSON text) is still read.
CONFIG_FORMAT = 3
_READABLE_FORMATS = (2, 3)
# What building a block needs at start-up, one list each; the rest stays JSON text per block.
_COLUMNS = ("key", "name", "description", "effect")
_SUMMARY_KEYS = ("method", "path", "tags", "auth")
_SEARCH_FIELD_CHARS = 200
EXPORT_CHECKS = ("openai-strict", "anthropic", "gemini")
_NAME_CHARS = re.compile(r"[^A-Za-z0-9]+")


def exporter_problem(schema: Mapping[str, Any]) -> str | None:
    """Why a provider's converter refuses *schema*, or None when all of them accept it."""
    for fmt in EXPORT_CHECKS:
        try:
            convert_schema(schema, fmt)
        except Exception as exc:  # noqa: BLE001 - any refusal means the block is skipped
            return f"the {fmt} schema converter refuses its inputs: {exc}"
    return None


def check_base_url(url: str, where: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a bad port
    except ValueError:
        raise SpecError.at(where, f"base URL {url[:200]!r} is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise SpecError.at(where, f"base URL {url[:200]!r} must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise SpecError.at(where, "base URL must not carry a user name or password")
    if parts.query or parts.fragment:
        raise SpecError.at(where, "base URL must not have a query or fragment")
    return url.rstrip("/")


def _server_url(document: Mapping[str, Any], location: str | None) -> str | None:
    servers = document.get("servers")
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], Mapping):
        return None
    url = str(servers[0].get("url") or "")
    variables = servers[0].get("variables")
    if isinstance(variables, Mapping):
        for name, var in variables.items():
            default = var.get("default") if isinstance(var, Mapping) else None
            url = url.replace("{" + str(name) + "}", str(default or ""))
    if "://" not in url:
        if location is None or not location.startswith(("http://", "https://")):
            return None  # relative to a file: the operator must say where the API is
        url = urljoin(location, url)
    return url


def block_name(source: str, key: str, method: str, path: str) -> str:
    stem = key if " " not in key else f"{method}_{path}"
    return f"{source}_" + (_NAME_CHARS.sub("_", stem).strip("_") or method)


class OpenAPIKind:
    kind = "openapi"

    def parse(self, name: str, spec_text: str, options: SourceOptions) -> ParsedSource:
        document = load_document(spec_text)
        if options.base_url:
            base_url = check_base_url(options.base_url, "--base-url")
            trusted = True
        else:
            found = _server_url(document, options.location)
            if not found:
                raise SpecError.at(
                    "$.servers",
                    "no absolute server URL; give the API's address with --base-url",
                )
            base_url = check_base_url(found, "$.servers[0].url")
            trusted = False
        fields, oauth = security_plan(document)
        tags = {t.lower() for t in options.include_tags}
        wanted = set(options.include_operations)
        operations: list[dict[str, Any]] = []
        skipped: list[Skipped] = []
        names: set[str] = set()
        keys: set[str] = set()
        for path, path_item in (document.get("paths") or {}).items():
            if not isinstance(path_item, Mapping):
                raise SpecError.at(json_path("paths", str(path)), "must be an object")
            for method in HTTP_METHODS:
                operation = path_item.get(method)
                if operation is None:
                    continue
                where = json_path("paths", str(path), method)
                if not isinstance(operation, Mapping):
                    raise SpecError.at(where, "must be an object")
                key = str(operation.get("operationId") or f"{method.upper()} {path}")
                op_tags = {str(t).lower() for t in operation.get("tags") or ()}
                if tags and not (tags & op_tags):
                    continue
                if wanted and key not in wanted:
                    continue
                if key in keys:
                    skipped.append(Skipped(key, "duplicate operationId"))
                    continue
                keys.add(key)
                try:
                    op = convert_operation(
                        document, str(path), method, path_item, operation, fields
                    )
                except SkipOperation as exc:
                    skipped.append(Skipped(key, str(exc)))
                    continue
                problem = exporter_problem(operation_input_schema(name, op))
                if problem is not None:
                    skipped.append(Skipped(key, problem))
                    continue
                op_name = block_name(name, key, method, str(path))
                base, n = op_name, 2
                while op_name.lower() in names:
                    op_name, n = f"{base}_{n}", n + 1
                names.add(op_name.lower())
                op["name"] = op_name
                operations.append(op)
        missing = wanted - keys
        skipped += [Skipped(k, "no such operationId in the description") for k in sorted(missing)]
        info = document.get("info") or {}
        config = {
            "format": CONFIG_FORMAT,
            "title": str(info.get("title") or name)[:200],
            "base_url": base_url,
            "base_url_trusted": trusted,
            "oauth2": oauth,
            "source": name,  # whose block ids the "id" column holds
            "operations": _columns(name, operations),
            "skipped": [s.to_dict() for s in skipped],
        }
        return ParsedSource(
            config=config, base_url=base_url, blocks=len(operations), skipped=skipped
        )

    def build_blocks(self, record: SourceRecord) -> Sequence[Block]:
        config = record.config
        columns = _stored_columns(record.name, config)
        ids = columns["id"]
        if config.get("source") != record.name:  # the ids are the source name's
            ids = [source_block_id(record.name, key) for key in columns["key"]]
        source, base_url = record.name, config["base_url"].rstrip("/")
        trusted = bool(config.get("base_url_trusted"))
        # Without the column (stored before it existed), a block reads its summary's.
        fields_of = columns.get("fields") or [None] * len(ids)
        return [
            OpenAPIOperationBlock(
                source=source, block_id=block_id, name=name, base_url=base_url,
                trusted=trusted, key=key, description=description, effect=effect,
                fields=fields, summary=summary, detail=detail,
            )
            for block_id, key, name, description, effect, fields, summary, detail in zip(
                ids, columns["key"], columns["name"], columns["description"], columns["effect"],
                fields_of, columns["summary"], columns["detail"], strict=True,
            )
        ]  # fmt: skip


def _columns(source: str, operations: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The stored form of *operations*: one list per column (format 3).

    ``summary`` holds what listing and search need besides the columns, ``detail`` the rest
    of the operation (schemas, parameters, credential placements), both as JSON text (quotes
    swapped, :func:`stored_json`) that a block decodes the first time it is needed.
    """
    names = ("id", *_COLUMNS, "fields", "summary", "detail")
    columns: dict[str, list[Any]] = {c: [] for c in names}
    for op in operations:
        columns["id"].append(source_block_id(source, op["key"]))
        for column in _COLUMNS:
            columns[column].append(op[column])
        summary = _summary(op)
        columns["fields"].append(stored_fields(summary["fields"]))
        columns["summary"].append(stored_json({k: summary[k] for k in _SUMMARY_KEYS}))
        columns["detail"].append(stored_json({k: v for k, v in op.items() if k not in _COLUMNS}))
    return columns


def _stored_columns(source: str, config: Mapping[str, Any]) -> Mapping[str, list[Any]]:
    """The columns of a stored config (format 3 as stored; format 2 converted)."""
    stored = config.get("format")
    if stored not in _READABLE_FORMATS:
        raise InvalidInputError(
            f"Source {source!r} was stored by another blockpilot version; "
            "run 'blockpilot sources refresh' to rebuild it"
        )
    if stored == 3:
        return cast(Mapping[str, list[Any]], config["operations"])
    summaries, details = config["operations"], config["details"]
    columns: dict[str, list[Any]] = {c: [op[c] for op in summaries] for c in _COLUMNS}
    columns["id"] = [source_block_id(source, key) for key in columns["key"]]
    columns["fields"] = [op["fields"] for op in summaries]
    columns["summary"] = [{k: op[k] for k in _SUMMARY_KEYS} for op in summaries]
    columns["detail"] = [swap_quotes(detail) for detail in details]
    return columns


def operation_count(config: Mapping[str, Any]) -> int:
    """How many blocks a stored config holds."""
    operations = config.get("operations") or ()
    return len(operations["key"] if isinstance(operations, Mapping) else operations)


def operation_summaries(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each operation's key, name, method, path, description, effect, tags, credential types
    and scopes, and search fields (``sources show``)."""
    if config.get("format") != 3:
        return list(config.get("operations") or ())
    columns = config["operations"]
    return [
        {
            **{c: columns[c][i] for c in _COLUMNS},
            **json.loads(swap_quotes(summary)),
            **({"fields": field_pairs(columns["fields"][i])} if "fields" in columns else {}),
        }
        for i, summary in enumerate(columns["summary"])
    ]


def operation_details(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each operation in full, as a block runs it (schemas, parameters, placements)."""
    if config.get("format") != 3:
        return [json.loads(detail) for detail in config.get("details") or ()]
    columns = config["operations"]
    return [
        {**{c: columns[c][i] for c in _COLUMNS}, **json.loads(swap_quotes(detail))}
        for i, detail in enumerate(columns["detail"])
    ]


def _summary(op: Mapping[str, Any]) -> dict[str, Any]:
    """What listing, search and ``sources show`` need of an operation, without its schemas."""
    auth = op.get("auth")
    return {
        "key": op["key"],
        "name": op["name"],
        "method": op["method"],
        "path": op["path"],
        "description": op["description"],
        "effect": op["effect"],
        "tags": op["tags"],
        "auth": None if auth is None else {"types": auth["types"], "scopes": auth["scopes"]},
        "fields": [
            [name, str(prop.get("description", ""))[:_SEARCH_FIELD_CHARS]]
            for name, prop in op["input"]["properties"].items()
        ],
    }
