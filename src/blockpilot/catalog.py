"""The block catalogue as the copilot sees it: search plus the exclusion rules (docs/tools.md)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from blockpilot.blocks.base import Block, BlockType
from blockpilot.blocks.registry import BlockRegistry
from blockpilot.blocks.search import BlockSearchIndex, SearchDocument


@dataclass(frozen=True, slots=True)
class CopilotExclusions:
    """Graph-only blocks that cannot run in a chat, by type or by id (configuration)."""

    block_types: frozenset[BlockType]
    block_ids: frozenset[str]

    @classmethod
    def from_names(cls, types: Iterable[str], ids: Iterable[str]) -> CopilotExclusions:
        return cls(
            block_types=frozenset(BlockType[t.strip().upper()] for t in types if t.strip()),
            block_ids=frozenset(i.strip().lower() for i in ids if i.strip()),
        )

    def excludes(self, block: Block) -> bool:
        return block.block_type in self.block_types or block.id.lower() in self.block_ids


def _document(block: Block) -> SearchDocument:
    fields = block.search_fields()
    return SearchDocument(
        id=block.id,
        name=block.name,
        description=block.description,
        categories=tuple(c.name.lower().replace("_", " ") for c in block.categories),
        fields=fields,
    )


class Catalog:
    """Which blocks the copilot may find and run, and ranked search over them."""

    def __init__(self, registry: BlockRegistry, exclusions: CopilotExclusions) -> None:
        self.registry = registry
        self.exclusions = exclusions
        self._index: BlockSearchIndex | None = None
        self._index_generation = -1
        self._documents: dict[str, tuple[Block, SearchDocument]] = {}
        self._lock = threading.Lock()

    @property
    def index(self) -> BlockSearchIndex:
        """The search index of the current catalogue, built once and shared by every search.

        When the registry changes (a source added, refreshed or removed) the next search
        builds a new one from the previous: only new or changed blocks are analysed again
        (docs/performance.md#catalogue-scale).
        """
        index = self._index
        if index is not None and self._index_generation == self.registry.generation:
            return index
        with self._lock:  # one build at a time; a second caller uses the first one's index
            generation = self.registry.generation
            if self._index is None or self._index_generation != generation:
                self._index = BlockSearchIndex(self._search_documents(), reuse=self._index)
                self._index_generation = generation
            return self._index

    def _search_documents(self) -> list[SearchDocument]:
        # The same document object for the same block object: the index recognises it
        # without comparing its text.
        known = self._documents
        documents: dict[str, tuple[Block, SearchDocument]] = {}
        for block in self.registry.all():
            cached = known.get(block.id)
            if cached is None or cached[0] is not block:
                cached = (block, _document(block))
            documents[block.id] = cached
        self._documents = documents
        return [document for _, document in documents.values()]

    def usable(self, block: Block) -> bool:
        return not self.registry.is_disabled(block) and not self.exclusions.excludes(block)

    def search(self, query: str, limit: int = 10) -> list[Block]:
        """Enabled, non-excluded blocks matching *query*, best first."""
        # Over-fetch: filtered hits must not leave the page short. If they still do and
        # there may be more hits, look at every hit (many hidden blocks can rank first).
        fetch = limit * 4
        while True:
            hits = self.index.search(query, limit=fetch)
            found: list[Block] = []
            for hit in hits:
                block = self.registry.get(hit.id)
                if block is not None and self.usable(block):
                    found.append(block)
                    if len(found) == limit:
                        return found
            if len(hits) < fetch or fetch >= len(self.index):
                return found
            fetch = len(self.index)
