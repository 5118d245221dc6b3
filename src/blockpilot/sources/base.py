"""Sources of blocks: what a kind of source must provide, and the registry of kinds.

A *source* turns something outside blockpilot (an OpenAPI description, a remote MCP server,
...) into blocks. It is stored once in the database (:mod:`blockpilot.storage.sources`) and
every process builds the same blocks from the stored, parsed form (docs/sources.md).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from hashlib import sha1
from typing import Any, Protocol

from blockpilot.blocks.base import Block
from blockpilot.errors import InvalidInputError
from blockpilot.storage.sources import SourceRecord

# The source name is the credentials provider name and the block-name prefix, and it appears
# in BLOCKPILOT_PROVIDER_<NAME>_* settings: lower-case letters, digits and "_".
SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Namespace of source block ids: uuid5(namespace, "<source>:<operation key>").
SOURCE_BLOCK_NAMESPACE = uuid.UUID("6f0c7f8e-4d0b-5a8e-9c51-0b6b1ccf2a10")


def check_source_name(name: str) -> str:
    if not isinstance(name, str) or not SOURCE_NAME.match(name):
        raise InvalidInputError(
            f"Invalid source name {str(name)[:80]!r}: use 1-40 lower-case letters, digits and "
            "'_', starting with a letter (it names the credentials provider and prefixes the "
            "block names)",
            details={"name": str(name)[:80]},
        )
    return name


def source_block_id(source: str, key: str) -> str:
    """The stable id of a source's block: the same on every refresh and in every process.

    ``str(uuid.uuid5(SOURCE_BLOCK_NAMESPACE, f"{source}:{key}"))``, computed without the
    ``UUID`` object (a third of a start-up with 100,000 source blocks went there).
    """
    digest = bytearray(sha1(_NAMESPACE_BYTES + f"{source}:{key}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_NAMESPACE_BYTES = SOURCE_BLOCK_NAMESPACE.bytes


@dataclass(frozen=True, slots=True)
class Skipped:
    """An item of a source (an operation, a tool) that did not become a block, and why."""

    operation: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"operation": self.operation, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """What the operator gave besides the spec."""

    base_url: str | None = None
    include_tags: tuple[str, ...] = ()
    include_operations: tuple[str, ...] = ()
    location: str | None = None


@dataclass(slots=True)
class ParsedSource:
    """A spec turned into the stored config, with what was left out."""

    config: dict[str, Any]
    base_url: str | None
    blocks: int
    skipped: list[Skipped] = field(default_factory=list)


class SourceKind(Protocol):
    """One kind of source (``openapi``, ``mcp``, ...)."""

    kind: str

    def parse(self, name: str, spec_text: str, options: SourceOptions) -> ParsedSource:
        """Check and convert *spec_text*; raise :class:`InvalidInputError` if it is unusable."""
        ...

    def build_blocks(self, record: SourceRecord) -> Sequence[Block]:
        """The blocks of a stored source (cheap: no network, no per-block schema models)."""
        ...


_KINDS: dict[str, SourceKind] = {}


def register_kind(kind: SourceKind) -> SourceKind:
    _KINDS[kind.kind] = kind
    return kind


def source_kind(kind: str) -> SourceKind:
    """The registered kind named *kind*; a typed error listing the kinds otherwise."""
    found = _load_builtin_kind(kind)
    if found is None:
        _load_builtin_kinds()  # to list them
        raise InvalidInputError(
            f"Unknown source kind {str(kind)[:40]!r}; known kinds: {', '.join(sorted(_KINDS))}",
            details={"kind": str(kind)[:40]},
        )
    return found


def source_kinds() -> list[str]:
    _load_builtin_kinds()
    return sorted(_KINDS)


def _load_builtin_kinds() -> None:
    for kind in ("openapi", "mcp"):
        _load_builtin_kind(kind)


def _load_builtin_kind(kind: str) -> SourceKind | None:
    """Import one built-in kind when first asked for: OpenAPI sources alone never import
    the MCP client SDK (~0.5 s of a start-up, docs/performance.md#catalogue-scale)."""
    if kind not in _KINDS:
        if kind == "openapi":
            from blockpilot.sources.openapi.kind import OpenAPIKind

            register_kind(OpenAPIKind())
        elif kind == "mcp":
            from blockpilot.sources.mcp.kind import MCPKind

            register_kind(MCPKind())
    return _KINDS.get(kind)
