"""The block registry: built-in and third-party blocks, loaded lazily and checked once.

Block modules are imported the first time the registry is used, not when blockpilot is
imported; provider SDKs are imported inside ``run`` so that listing metadata stays cheap.
Third-party packages add blocks through the ``blockpilot.blocks`` entry-point group; an
entry point may name a module (every Block subclass defined in it is taken), a Block
subclass, or a callable returning Block subclasses. A block that fails its checks is
reported in :attr:`BlockRegistry.problems` and skipped, never crashing start-up.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import math
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any, cast

from pydantic import BaseModel
from pydantic.json_schema import PydanticJsonSchemaWarning

from blockpilot.blocks.base import Block
from blockpilot.blocks.schema import BlockSchema, BlockSchemaOutput, is_credentials_annotation
from blockpilot.credentials.fields import field_info_problems
from blockpilot.ids import is_uuid

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "blockpilot.blocks"
BUILTIN_MODULES: tuple[str, ...] = (
    "blockpilot.blocks.library.basic",
    "blockpilot.blocks.library.http",
    "blockpilot.blocks.library.llm",
    "blockpilot.blocks.library.email",
    "blockpilot.blocks.library.github",
    "blockpilot.blocks.library.google",
    "blockpilot.blocks.library.notion",
    "blockpilot.blocks.library.linear",
    "blockpilot.blocks.library.jira",
    "blockpilot.blocks.library.hubspot",
    "blockpilot.blocks.library.workspace_files",
    "blockpilot.blocks.library.graph_only",
    "blockpilot.blocks.library.slack",
    "blockpilot.blocks.library.discord",
    "blockpilot.blocks.library.telegram",
    "blockpilot.blocks.library.todoist",
    "blockpilot.blocks.library.airtable",
    "blockpilot.blocks.library.text",
    "blockpilot.blocks.library.data",
    "blockpilot.blocks.library.dates",
    "blockpilot.blocks.library.collections",
    "blockpilot.blocks.library.web",
    "blockpilot.blocks.library.sql",
)


@dataclass(frozen=True, slots=True)
class BlockLoadProblem:
    """A block (or a whole source) that was skipped, and why."""

    source: str
    problem: str


BlockSource = Callable[[], Iterable[type[Block]]]


def _blocks_in_module(module: ModuleType) -> list[type[Block]]:
    return [
        cast(type[Block], obj)
        for obj in vars(module).values()
        if inspect.isclass(obj)
        # Not issubclass(): for a class that is no block, ABCMeta walks every Block subclass
        # (10,000 of them made it most of a start-up).
        and Block in obj.__mro__
        and obj.__module__ == module.__name__
        and not inspect.isabstract(obj)
        and not obj.__name__.endswith("Base")
    ]


def module_source(module_name: str) -> BlockSource:
    return lambda: _blocks_in_module(importlib.import_module(module_name))


def _entry_point_sources() -> Iterator[tuple[str, BlockSource]]:
    for ep in entry_points(group=ENTRY_POINT_GROUP):

        def load(ep: Any = ep) -> Iterable[type[Block]]:
            target = ep.load()
            if isinstance(target, ModuleType):
                return _blocks_in_module(target)
            if inspect.isclass(target) and issubclass(target, Block):
                return [target]
            if callable(target):
                return list(target())
            raise TypeError(f"entry point {ep.value!r} is not a module, Block or callable")

        yield f"entry point {ep.name} ({ep.value})", load


_DERIVED_JSONSCHEMA = BlockSchema.jsonschema.__func__  # type: ignore[attr-defined]


# Core-schema nodes whose JSON Schema pydantic always makes, from JSON values only: a model
# built of nothing else needs no trial generation to be known serialisable. Anything else (an
# enum, a custom type or validator, a schema hook) is generated and checked at load time.
_PLAIN_NODES = frozenset(
    {
        "any", "none", "bool", "int", "float", "str", "literal", "list", "set", "frozenset",
        "tuple", "dict", "nullable", "union", "default", "function-before", "function-after",
        "model", "model-fields", "model-field", "definitions", "definition-ref",
    }
)  # fmt: skip
_NODE_CHILDREN = ("schema", "items_schema", "keys_schema", "values_schema")
_PLAIN_METADATA = frozenset({"pydantic_js_extra", "pydantic_js_updates"})  # and model hooks
_MODEL_SCHEMA_HOOK = BaseModel.__get_pydantic_json_schema__.__func__  # type: ignore[attr-defined]
_MODEL_JSON_SCHEMA = BaseModel.model_json_schema.__func__  # type: ignore[attr-defined]
_SCHEMA_CONFIG_KEYS = (
    "json_schema_extra", "json_schema_mode_override", "field_title_generator",
    "model_title_generator", "arbitrary_types_allowed",
)  # fmt: skip


def plain_schema(schema: type[BlockSchema]) -> bool:
    """Whether *schema*'s JSON Schema is certain to generate and serialise, judged from its
    core schema without generating it (docs/performance.md#catalogue-scale): a 10,000-block
    start-up spent most of its time generating schemas only to check them."""
    if getattr(schema.jsonschema, "__func__", None) is not _DERIVED_JSONSCHEMA:
        return False
    if getattr(schema.model_json_schema, "__func__", None) is not _MODEL_JSON_SCHEMA:
        return False
    try:
        return _plain_node(schema.__pydantic_core_schema__)
    except Exception:  # noqa: BLE001 - anything unexpected: let the full check decide
        return False


def _plain_node(root: Any) -> bool:
    stack = [root]
    while stack:
        node = stack.pop()
        kind = node.get("type")
        if kind not in _PLAIN_NODES:
            return False
        metadata = node.get("metadata")
        if metadata and not _plain_metadata(metadata):
            return False
        if kind == "literal":
            if not _json_value(node["expected"]):
                return False
        elif kind == "default":
            if not _json_value(node.get("default")):  # a default_factory is not in the schema
                return False
        elif kind == "model":
            if any(node["cls"].model_config.get(key) for key in _SCHEMA_CONFIG_KEYS):
                return False
        elif kind == "model-fields":
            if node.get("computed_fields"):
                return False
            stack.extend(node["fields"].values())
        elif kind == "union":
            stack.extend(c[0] if isinstance(c, tuple) else c for c in node["choices"])
        elif kind == "definitions":
            stack.extend(node["definitions"])
        elif kind == "tuple":
            stack.extend(node.get("items_schema", ()))
        for key in _NODE_CHILDREN:
            child = node.get(key)
            if type(child) is dict:
                stack.append(child)
    return True


def _plain_metadata(metadata: dict[str, Any]) -> bool:
    for key, value in metadata.items():
        if key == "pydantic_js_functions":
            if any(getattr(hook, "__func__", None) is not _MODEL_SCHEMA_HOOK for hook in value):
                return False  # a model's own schema hook
        elif key not in _PLAIN_METADATA or not _json_value(value):
            return False
    return True


_JSON_SCALARS = frozenset({str, int, bool, type(None)})


def _json_value(value: Any) -> bool:
    """Whether *value* is made of JSON's own types (what pydantic puts in a schema as is)."""
    kind = type(value)
    if kind in _JSON_SCALARS:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list or kind is tuple:
        return all(_json_value(item) for item in value)
    if kind is dict:
        return all(type(k) is str and _json_value(v) for k, v in value.items())
    return False


def check_block_class(cls: type[Block]) -> list[str]:
    """Load-time checks (docs/library.md); an empty list means the block is well formed."""
    problems: list[str] = []
    name = cls.__name__
    if not name.endswith("Block"):
        problems.append(f"class name {name!r} must end in 'Block'")
    block_id = getattr(cls, "id", None)
    if not isinstance(block_id, str) or not is_uuid(block_id):
        problems.append(f"{name}: id must be a 36-character UUID string")
    if not getattr(cls, "description", None):
        problems.append(f"{name}: description is missing")
    if inspect.iscoroutinefunction(getattr(cls, "run", None)):
        # "async def run" without yield returns once; outputs must be yielded.
        problems.append(
            f"{name}: run must be an async generator (yield (output_name, value) pairs)"
        )
    for attr, base in (("Input", None), ("Output", BlockSchemaOutput)):
        schema = getattr(cls, attr, None)
        if schema is None:
            problems.append(f"{name}: {attr} schema is missing")
            continue
        if base is not None and not issubclass(schema, base):
            problems.append(f"{name}: Output must derive from BlockSchemaOutput")
        for field_name, info in schema.model_fields.items():
            if not info.description:
                problems.append(f"{name}.{attr}.{field_name}: field has no description")
        if plain_schema(schema):
            continue  # its JSON Schema cannot fail: made on first use, not here
        try:
            with warnings.catch_warnings():
                # pydantic drops a default it cannot serialise with only a warning; the model
                # would then never learn the default, so it is a load-time error here.
                warnings.simplefilter("error", PydanticJsonSchemaWarning)
                if getattr(schema.jsonschema, "__func__", None) is not _DERIVED_JSONSCHEMA:
                    json.dumps(schema.model_json_schema())
                # The usual jsonschema() is model_json_schema() inlined (and cached): one
                # schema generation checks both.
                json.dumps(schema.jsonschema())
        except Exception as exc:  # noqa: BLE001 - any failure here means "not serialisable"
            problems.append(f"{name}: {attr} schema is not JSON-serialisable ({exc})")
    inputs = getattr(cls, "Input", None)
    if inputs is not None:
        cred_fields = inputs.credentials_fields()
        for field_name, info in inputs.model_fields.items():
            named = field_name == "credentials" or field_name.endswith("_credentials")
            typed = is_credentials_annotation(info.annotation)
            if named != typed or typed != (field_name in cred_fields):
                problems.append(
                    f"{name}.{field_name}: credentials fields must be named 'credentials' or "
                    "'*_credentials', typed CredentialsMetaInput and declared with CredentialsField"
                )
        for field_name, field_info in cred_fields.items():
            problems += [
                f"{name}: {p}"
                for p in field_info_problems(field_name, field_info, inputs.model_fields)
            ]
    return problems


class BlockRegistry:
    """All loaded blocks by id, plus what was skipped.

    Args:
        sources: ``(label, loader)`` pairs; defaults to the built-in modules and the
            installed entry points.
        disabled: Block ids or names disabled by configuration.
    """

    def __init__(
        self,
        sources: Iterable[tuple[str, BlockSource]] | None = None,
        *,
        disabled: Iterable[str] = (),
    ) -> None:
        self._sources = list(sources) if sources is not None else None
        self._disabled_config = {d.strip().lower() for d in disabled if d.strip()}
        self._blocks: dict[str, Block] | None = None
        self._by_name: dict[str, Block] = {}
        self.problems: list[BlockLoadProblem] = []
        self._lock = threading.Lock()
        # Blocks of stored sources (OpenAPI, MCP; docs/sources.md), set by the process's
        # source catalogue; ``generation`` moves on every change so search indexes rebuild.
        self._source_blocks: dict[str, dict[str, Block]] = {}
        self._retired: dict[str, str] = {}  # id of a vanished source block → what it was
        self._static: dict[str, Block] = {}
        self.generation = 0
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call *listener* (no arguments, any thread) after the source blocks changed."""
        self._listeners.append(listener)

    @classmethod
    def default_sources(cls) -> list[tuple[str, BlockSource]]:
        sources = [(m, module_source(m)) for m in BUILTIN_MODULES]
        return sources + list(_entry_point_sources())

    def _load(self) -> dict[str, Block]:
        # Loaded once, then only replaced whole (_merge_sources): read without the lock.
        loaded = self._blocks
        if loaded is not None:
            return loaded
        with self._lock:
            if self._blocks is not None:
                return self._blocks
            blocks: dict[str, Block] = {}
            sources = self._sources if self._sources is not None else self.default_sources()
            for label, load in sources:
                try:
                    classes = list(load())
                except Exception as exc:  # noqa: BLE001 - a broken plug-in must not stop start-up
                    self._report(label, f"could not be loaded: {type(exc).__name__}: {exc}")
                    continue
                for cls in classes:
                    self._add(label, cls, blocks)
            self._static = blocks
            self._merge_sources()
            return self._blocks  # type: ignore[return-value]

    def _merge_sources(self) -> None:
        """Put the source blocks beside the loaded ones (call with the lock held).

        A new dict each time: readers holding the old one are never disturbed.
        """
        blocks = dict(self._static)
        for source_blocks in self._source_blocks.values():
            for key, block in source_blocks.items():
                blocks.setdefault(key, block)  # a built-in block keeps its id
        by_name: dict[str, Block] = {}
        for block in blocks.values():
            by_name.setdefault(block.name.lower(), block)
        # By name first: a reader that sees the blocks without the lock sees their names too.
        self._by_name = by_name
        self._blocks = blocks
        self.generation += 1

    def set_source_blocks(self, source: str, blocks: Iterable[Block]) -> None:
        """Replace the blocks of stored source *source* (its name) with *blocks*.

        Source blocks are built and checked by their source (docs/sources.md).
        """
        self.update_sources({source: blocks})

    def remove_source_blocks(self, source: str) -> None:
        self.update_sources({}, removed=(source,))

    def update_sources(
        self, replaced: Mapping[str, Iterable[Block]], removed: Iterable[str] = ()
    ) -> None:
        """Replace the blocks of the sources in *replaced* and drop those in *removed*,
        in one step: the catalogue is merged once, however many sources changed (a
        process starting with hundreds of sources)."""
        self._load()
        with self._lock:
            changed = False
            for source in removed:
                gone = self._source_blocks.pop(source, None)
                if gone is not None:
                    self._retire(source, gone, {})
                    changed = True
            for source, blocks in replaced.items():
                fresh = {b.id.lower(): b for b in blocks}
                self._retire(source, self._source_blocks.get(source, {}), fresh)
                self._source_blocks[source] = fresh
                changed = True
            if changed:
                self._merge_sources()
        if changed:
            for listener in self._listeners:
                listener()

    def _retire(self, source: str, old: Mapping[str, Block], new: Mapping[str, Block]) -> None:
        # Remember what a vanished source block was, so running it says why it is gone.
        for key, block in old.items():
            if key not in new:
                self._retired[key] = f"{block.name} (source {source!r} no longer offers it)"
        for key in new:
            self._retired.pop(key, None)

    def retired(self, block_id: str) -> str | None:
        """What a source block that is gone was (after a refresh or removal), if it was one."""
        return self._retired.get(block_id.lower())

    def source_names(self) -> list[str]:
        return sorted(self._source_blocks)

    def _add(self, label: str, cls: type[Block], blocks: dict[str, Block]) -> None:
        try:
            problems = check_block_class(cls)
        except Exception as exc:  # noqa: BLE001
            problems = [f"{cls!r} could not be checked: {exc}"]
        key = cls.id.lower() if not problems else ""
        if not problems and key in blocks:
            problems = [f"{cls.__name__}: id {cls.id} is already used by {blocks[key].name}"]
        if not problems:
            try:
                blocks[key] = cls()
                return
            except Exception as exc:  # noqa: BLE001 - e.g. abstract, or a constructor that fails
                problems = [f"{cls.__name__} could not be created: {type(exc).__name__}: {exc}"]
        self._report(label, "; ".join(problems))

    def _report(self, label: str, problem: str) -> None:
        logger.warning("block skipped", extra={"source": label, "problem": problem})
        self.problems.append(BlockLoadProblem(source=label, problem=problem))

    def all(self) -> list[Block]:
        """Every loaded block, enabled or not, sorted by name."""
        return sorted(self._load().values(), key=lambda b: b.name)

    def get(self, block_id: str) -> Block | None:
        """The block with this id (ids are UUIDs, so case does not matter)."""
        return self._load().get(block_id.strip().lower())

    def get_by_name(self, name: str) -> Block | None:
        self._load()
        key = name.strip().lower()
        return self._by_name.get(key) or self._by_name.get(key + "block")

    def is_disabled(self, block: Block) -> bool:
        if not self._disabled_config:  # the usual case; every run asks
            return bool(block.disabled)
        return block.disabled or bool(
            self._disabled_config & {block.id.lower(), block.name.lower()}
        )

    def __len__(self) -> int:
        return len(self._load())
