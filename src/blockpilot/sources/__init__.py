"""Sources of blocks: imported API descriptions (OpenAPI) and, later, remote MCP servers.

See docs/sources.md.
"""

from blockpilot.sources.base import (
    ParsedSource,
    Skipped,
    SourceKind,
    SourceOptions,
    register_kind,
    source_block_id,
    source_kind,
    source_kinds,
)

__all__ = [
    "ParsedSource",
    "Skipped",
    "SourceKind",
    "SourceOptions",
    "register_kind",
    "source_block_id",
    "source_kind",
    "source_kinds",
]
