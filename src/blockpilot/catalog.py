"""The block catalogue as the copilot sees it: search plus the exclusion rules (docs/tools.md)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from blockpilot.blocks.base import Block, BlockType
from blockpilot.blocks.registry import BlockRegistry
from blockpilot.blocks.search import BlockSearchIndex, IndexBuildCancelled, SearchDocument

logger = logging.getLogger(__name__)


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
        self._lock = threading.Lock()  # held by whoever builds the index
        # The background builder (build_in_background): at most one thread at a time.
        self._state = threading.Lock()
        self._builder: threading.Thread | None = None
        self._background = False
        self._stop = threading.Event()
        #: CPU time of the last index build, in seconds (bench/catalog_scale.py reports it).
        self.build_cpu_seconds = 0.0
        registry.on_change(self._registry_changed)

    @property
    def index(self) -> BlockSearchIndex:
        """The search index of the current catalogue, built once and shared by every search.

        When the registry changes (a source added, refreshed or removed) a new one is built
        from the previous: only new or changed blocks are analysed again
        (docs/performance.md#catalogue-scale). If a build is under way (in the background,
        or for another caller) this waits for it.
        """
        return self._current(None)

    def _current(self, should_stop: Callable[[], bool] | None) -> BlockSearchIndex:
        index = self._index
        if index is not None and self._index_generation == self.registry.generation:
            return index
        with self._lock:  # one build at a time; a second caller uses the first one's index
            generation = self.registry.generation
            if self._index is None or self._index_generation != generation:
                started = time.thread_time()
                documents = self._search_documents(should_stop)
                self._index = BlockSearchIndex(
                    documents, reuse=self._index, should_stop=should_stop
                )
                self._index_generation = generation
                self.build_cpu_seconds = time.thread_time() - started
            return self._index

    # -- building in the background ---------------------------------------------------------

    def build_in_background(self) -> None:
        """Build the index in a background thread now, and again after every change of the
        source blocks (``Pilot.open`` calls this): searches then find it ready, and a search
        that comes first waits for the build under way instead of starting its own."""
        with self._state:
            if self._stop.is_set():
                return
            self._background = True
            if self._builder is None:
                self._builder = threading.Thread(
                    target=self._build_until_current, name="blockpilot-search-index", daemon=True
                )
                self._builder.start()

    def _registry_changed(self) -> None:
        if self._background:
            self.build_in_background()

    def _build_until_current(self) -> None:
        while True:
            try:
                self._current(self._stop.is_set)
            except IndexBuildCancelled:
                pass
            except Exception as exc:  # noqa: BLE001 - the next search builds it and says why
                logger.warning(
                    "search index build failed; the next search tries again",
                    extra={"error": f"{type(exc).__name__}: {exc}"},
                )
                with self._state:
                    self._builder = None
                return
            with self._state:
                # A change during the build: build again (the previous index is reused).
                if self._stop.is_set() or self._index_generation == self.registry.generation:
                    self._builder = None
                    return

    def is_current(self) -> bool:
        """Whether the index of the current catalogue is built (searches need not wait)."""
        return self._index is not None and self._index_generation == self.registry.generation

    async def ready(self) -> None:
        """Wait, without blocking the event loop, until the index of the current catalogue is
        built (a search during a build would otherwise hold the loop until it ends)."""
        if not self.is_current():
            await asyncio.to_thread(self._current, None)

    async def background_build_done(self) -> None:
        """Wait, without blocking the event loop, until no background build is under way."""
        while True:
            with self._state:
                builder = self._builder
            if builder is None:
                return
            await asyncio.to_thread(builder.join)

    async def aclose(self) -> None:
        """Stop building in the background (``Pilot.close``): a build under way stops at its
        next check, within a few milliseconds, and this returns when its thread has ended."""
        with self._state:
            self._stop.set()
            builder = self._builder
        if builder is not None:
            await asyncio.to_thread(builder.join)

    def _search_documents(self, should_stop: Callable[[], bool] | None) -> list[SearchDocument]:
        # The same document object for the same block object: the index recognises it
        # without comparing its text.
        known = self._documents
        documents: dict[str, tuple[Block, SearchDocument]] = {}
        for count, block in enumerate(self.registry.all()):
            if should_stop is not None and count % 1024 == 0 and should_stop():
                raise IndexBuildCancelled
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
