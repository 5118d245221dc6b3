"""The ``mcp`` kind of source: each tool of a remote MCP server becomes a block.

The stored "spec" is the server's own ``tools/list`` answer (plus its URL and auth mode), so
every process builds the same blocks without contacting the server (docs/sources.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from blockpilot.blocks.base import Block
from blockpilot.errors import InvalidInputError, SpecError
from blockpilot.sources.base import ParsedSource, Skipped, SourceOptions, source_block_id
from blockpilot.sources.mcp._transports import (
    SSE,
    STDIO,
    STREAMABLE_HTTP,
    TRANSPORT_CHOICES,
    Endpoint,
)
from blockpilot.sources.mcp.block import MCPToolBlock, tool_operation
from blockpilot.sources.openapi.block import operation_input_schema
from blockpilot.sources.openapi.kind import check_base_url, exporter_problem
from blockpilot.storage.sources import SourceRecord

CONFIG_FORMAT = 1
AUTH_MODES = ("none", "bearer", "oauth")
_NAME_CHARS = re.compile(r"[^A-Za-z0-9]+")
_SEARCH_FIELD_CHARS = 200


def listing_text(
    url: str | None,
    auth: str,
    tools: Sequence[Mapping[str, Any]],
    endpoint: Endpoint | None = None,
    oauth: Mapping[str, Any] | None = None,
) -> str:
    """The text stored as the source's spec: what the server listed, and where it is (and,
    with ``--auth oauth``, what OAuth discovery found: sources/mcp/oauth.py)."""
    where = (endpoint or Endpoint(STREAMABLE_HTTP, url)).to_config()
    listing = {**where, "auth": auth, "tools": list(tools)}
    if oauth is not None:
        listing["oauth"] = dict(oauth)
    return json.dumps(listing, sort_keys=True)


def check_endpoint(endpoint: Endpoint, auth: str) -> Endpoint:
    """*endpoint* if it is usable with *auth*; a typed error that says what to fix."""
    if endpoint.transport == STDIO:
        if not endpoint.command:
            raise InvalidInputError("A stdio MCP server needs --command")
        if auth != "none":
            raise InvalidInputError(
                f"--auth {auth} cannot be used with --command: a stdio server is one process "
                "shared by every user, so it may hold only operator-level settings (--env), "
                "never a per-user secret; serve it over HTTP for per-user auth",
                details={"auth": auth},
            )
        return endpoint
    if endpoint.transport not in (STREAMABLE_HTTP, SSE):
        raise InvalidInputError(
            f"Unknown --transport {endpoint.transport[:20]!r}; use one of: "
            f"{', '.join(TRANSPORT_CHOICES)}",
            details={"transport": endpoint.transport[:20]},
        )
    return replace(endpoint, url=check_base_url(str(endpoint.url or ""), "URL"))


def tool_effect(annotations: Mapping[str, Any] | None) -> str:
    """``readOnlyHint`` → read, ``destructiveHint`` → destructive, anything else → write."""
    hints = annotations or {}
    if hints.get("readOnlyHint") is True:
        return "read"
    if hints.get("destructiveHint") is True:
        return "destructive"
    return "write"


def _tool_problem(tool: Mapping[str, Any]) -> str | None:
    schema = tool.get("inputSchema")
    if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
        return "its inputSchema is not a JSON object schema"
    props = schema.get("properties", {})
    if not isinstance(props, Mapping):
        return "its inputSchema properties are not an object"
    if "credentials" in props:
        return "it has an input named 'credentials', which blockpilot reserves"
    return None


class MCPKind:
    kind = "mcp"

    def parse(self, name: str, spec_text: str, options: SourceOptions) -> ParsedSource:
        try:
            listing = json.loads(spec_text)
        except ValueError:
            raise SpecError.at("$", "the stored tool listing is not JSON") from None
        if not isinstance(listing, Mapping) or not isinstance(listing.get("tools"), list):
            raise SpecError.at("$.tools", "must be a list of tools")
        auth = str(listing.get("auth") or "none")
        if auth not in AUTH_MODES:
            raise InvalidInputError(
                f"Unknown --auth {auth[:20]!r}; use one of: {', '.join(AUTH_MODES)}",
                details={"auth": auth[:20]},
            )
        endpoint = check_endpoint(Endpoint.from_config(listing), auth)
        url = endpoint.url
        oauth = listing.get("oauth")
        if auth == "oauth" and not isinstance(oauth, Mapping):
            raise SpecError.at("$.oauth", "an --auth oauth source needs its discovered OAuth facts")
        wanted = set(options.include_operations)
        tools: list[dict[str, Any]] = []
        skipped: list[Skipped] = []
        names: set[str] = set()
        seen: set[str] = set()
        for tool in listing["tools"]:
            if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
                skipped.append(Skipped(str(tool)[:80], "not a tool with a name"))
                continue
            key = tool["name"]
            if wanted and key not in wanted:
                continue
            if key in seen:
                skipped.append(Skipped(key, "duplicate tool name"))
                continue
            seen.add(key)
            problem = _tool_problem(tool)
            op = None if problem else tool_operation(tool, auth)
            if op is not None:
                problem = exporter_problem(operation_input_schema(name, op))
            if problem is not None:
                skipped.append(Skipped(key, problem))
                continue
            block_name = f"{name}_" + (_NAME_CHARS.sub("_", key).strip("_") or "tool")
            base, n = block_name, 2
            while block_name.lower() in names:
                block_name, n = f"{base}_{n}", n + 1
            names.add(block_name.lower())
            assert op is not None
            tools.append(
                {
                    "key": key,
                    "name": block_name,
                    "description": op["description"],
                    "effect": tool_effect(tool.get("annotations")),
                    "fields": [
                        [field, str(prop.get("description", ""))[:_SEARCH_FIELD_CHARS]]
                        for field, prop in op["input"]["properties"].items()
                    ],
                    "detail": json.dumps(op, separators=(",", ":")),
                }
            )
        skipped += [Skipped(k, "the server lists no such tool") for k in sorted(wanted - seen)]
        config = {
            "format": CONFIG_FORMAT,
            "title": name,
            **endpoint.to_config(),
            "auth": auth,
            "operations": tools,
            "skipped": [s.to_dict() for s in skipped],
        }
        if isinstance(oauth, Mapping) and auth == "oauth":
            config["oauth"] = dict(oauth)
        return ParsedSource(config=config, base_url=url, blocks=len(tools), skipped=skipped)

    def build_blocks(self, record: SourceRecord) -> Sequence[Block]:
        config = record.config
        if config.get("format") != CONFIG_FORMAT:
            raise InvalidInputError(
                f"Source {record.name!r} was stored by another blockpilot version; "
                "run 'blockpilot sources refresh' to rebuild it"
            )
        endpoint = Endpoint.from_config(config)
        return [
            MCPToolBlock(
                endpoint=endpoint,
                source=record.name,
                block_id=source_block_id(record.name, "tool:" + tool["key"]),
                name=tool["name"],
                base_url=endpoint.url or "",
                trusted=True,
                key=tool["key"],
                description=tool["description"],
                effect=tool["effect"],
                summary=tool,
                detail=tool["detail"],
            )
            for tool in config["operations"]
        ]
