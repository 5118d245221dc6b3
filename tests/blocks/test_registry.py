"""The block registry: load-time checks, broken sources, disabling, lazy loading."""

from __future__ import annotations

import enum
import json
import logging
import subprocess
import sys
from typing import Any, Literal

import pytest
from pydantic import Field

from blockpilot.blocks.base import Block
from blockpilot.blocks.registry import (
    BUILTIN_MODULES,
    BlockRegistry,
    check_block_class,
    plain_schema,
)
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import CredentialsMetaInput
from blockpilot.ids import is_uuid


def make_block(
    name: str = "GoodBlock",
    block_id: str = "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b10",
    *,
    input_cls: type[BlockSchemaInput] | None = None,
    output_cls: type[BlockSchemaOutput] | None = None,
    **attrs: Any,
) -> type[Block]:
    class In(BlockSchemaInput):
        text: str = SchemaField(description="Some text")

    class Out(BlockSchemaOutput):
        result: str = SchemaField(description="The result")

    async def run(self: Block, input_data: Any, **kwargs: Any) -> Any:
        yield "result", input_data.text

    body: dict[str, Any] = {
        "id": block_id,
        "description": "A block.",
        "Input": input_cls or In,
        "Output": output_cls or Out,
        "run": run,
    }
    body.update(attrs)
    return type(name, (Block,), body)


GOOD = make_block()
OTHER_GOOD = make_block("OtherGoodBlock", "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b11")


def registry(*classes: type[Block], disabled: tuple[str, ...] = ()) -> BlockRegistry:
    return BlockRegistry(sources=[("test-source", lambda: classes)], disabled=disabled)


def assert_rejected(bad: type[Block], fragment: str) -> None:
    reg = registry(GOOD, bad, OTHER_GOOD)
    assert {b.name for b in reg.all()} == {"GoodBlock", "OtherGoodBlock"}
    assert len(reg.problems) == 1, reg.problems
    problem = reg.problems[0]
    assert problem.source == "test-source"
    assert fragment in problem.problem, problem.problem


def test_good_block_passes_the_checks() -> None:
    assert check_block_class(GOOD) == []
    reg = registry(GOOD)
    assert reg.problems == []
    assert reg.get(GOOD.id).name == "GoodBlock"  # type: ignore[union-attr]
    assert len(reg) == 1


@pytest.mark.parametrize(
    "bad_id",
    [
        "not-a-uuid",
        "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b1",
        "5d6b1a584a0e4f8e9a516b2b7d2a9b10",
        "",
        12345,
        "{5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b10}",
    ],
)
def test_bad_id_is_rejected(bad_id: Any) -> None:
    assert_rejected(make_block("BadIdBlock", bad_id), "id must be a 36-character UUID")


def test_missing_id_is_rejected() -> None:
    bad = make_block("NoIdBlock")
    del bad.id
    assert_rejected(bad, "id must be a 36-character UUID")


def test_name_must_end_in_block() -> None:
    assert_rejected(
        make_block("Frobnicator", "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b12"), "must end in 'Block'"
    )


def test_missing_description_is_rejected() -> None:
    bad = make_block("QuietBlock", "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b12", description="")
    assert_rejected(bad, "description is missing")


def test_undocumented_input_field_is_rejected() -> None:
    class In(BlockSchemaInput):
        text: str = SchemaField(description="Documented")
        mystery: int = 3

    bad = make_block("UndocumentedBlock", "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b12", input_cls=In)
    assert_rejected(bad, "UndocumentedBlock.Input.mystery: field has no description")


def test_undocumented_output_field_is_rejected() -> None:
    class Out(BlockSchemaOutput):
        result: str

    bad = make_block("UndocumentedOutBlock", "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b12", output_cls=Out)
    assert_rejected(bad, "Output.result: field has no description")


def test_output_must_derive_from_block_schema_output() -> None:
    class Out(BlockSchemaInput):
        result: str = SchemaField(description="The result")

    bad = make_block("WrongOutputBlock", "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b12", output_cls=Out)
    assert_rejected(bad, "Output must derive from BlockSchemaOutput")


class Opaque:
    """Not something JSON Schema can describe."""


def test_non_serialisable_schema_is_rejected() -> None:
    class In(BlockSchemaInput):
        model_config = {"arbitrary_types_allowed": True}
        thing: Opaque = SchemaField(description="An opaque thing")

    bad = make_block("OpaqueBlock", "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b12", input_cls=In)
    assert_rejected(bad, "Input schema is not JSON-serialisable")


def test_default_json_cannot_hold_is_rejected_not_silently_dropped() -> None:
    # Regression: pydantic dropped the default from the schema with only a warning, so the
    # block loaded and the model was told the field is optional with no default.
    class In(BlockSchemaInput):
        when: Any = SchemaField(default=object(), description="A default JSON cannot hold")

    bad = make_block("BadDefaultBlock", "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b12", input_cls=In)
    assert_rejected(bad, "not JSON-serialisable")


def _cred_block(name: str, field_name: str = "credentials", **field_kwargs: Any) -> type[Block]:
    kwargs: dict[str, Any] = {
        "providers": ["openai"],
        "supported_types": ["api_key"],
        "description": "Key",
    }
    kwargs.update(field_kwargs)
    In = type(
        "In",
        (BlockSchemaInput,),
        {
            "__annotations__": {"model": str, field_name: CredentialsMetaInput},
            "model": SchemaField(default="m", description="Model"),
            field_name: CredentialsField(**kwargs),
        },
    )
    return make_block(name, "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b12", input_cls=In)


def test_well_formed_credentials_fields_pass() -> None:
    assert check_block_class(_cred_block("FineBlock")) == []
    assert check_block_class(_cred_block("FineNamedBlock", "github_credentials")) == []
    mapped = _cred_block(
        "MappedBlock",
        providers=["a", "b"],
        discriminator="model",
        discriminator_mapping={"m": "a", "n": "b"},
    )
    assert check_block_class(mapped) == []


@pytest.mark.parametrize(
    ("field_name", "kwargs", "fragment"),
    [
        ("credentials", {"providers": []}, "names no provider"),
        ("credentials", {"supported_types": ["password"]}, "unsupported types"),
        ("credentials", {"supported_types": []}, "unsupported types"),
        ("credentials", {"discriminator": "nope"}, "discriminator 'nope' is not an input"),
        ("credentials", {"providers": ["a", "b"]}, "several providers but no mapping"),
        (
            "credentials",
            {"providers": ["a"], "discriminator": "model", "discriminator_mapping": {"m": "zzz"}},
            "maps to providers it does not list",
        ),
        ("api_key", {}, "credentials fields must be named"),
    ],
)
def test_badly_formed_credentials_field_is_rejected(
    field_name: str, kwargs: dict[str, Any], fragment: str
) -> None:
    assert_rejected(_cred_block("BadCredsBlock", field_name, **kwargs), fragment)


def test_credentials_named_field_without_credentials_field_is_rejected() -> None:
    class In(BlockSchemaInput):
        credentials: str = SchemaField(description="Looks like credentials, is a string")

    bad = make_block("FakeCredsBlock", "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b12", input_cls=In)
    assert_rejected(bad, "credentials fields must be named")


def test_credentials_typed_field_without_credentials_field_is_rejected() -> None:
    class In(BlockSchemaInput):
        credentials: CredentialsMetaInput = SchemaField(description="Typed but not declared")

    bad = make_block("UndeclaredCredsBlock", "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b12", input_cls=In)
    assert_rejected(bad, "credentials fields must be named")


def test_duplicate_id_keeps_the_first_and_reports_the_second() -> None:
    dup = make_block("DuplicateBlock", GOOD.id)
    reg = registry(GOOD, dup, OTHER_GOOD)
    assert reg.get(GOOD.id).name == "GoodBlock"  # type: ignore[union-attr]
    assert [p.problem for p in reg.problems] == [
        f"DuplicateBlock: id {GOOD.id} is already used by GoodBlock"
    ]


def test_duplicate_id_across_sources() -> None:
    dup = make_block("DuplicateBlock", GOOD.id)
    reg = BlockRegistry(sources=[("first", lambda: [GOOD]), ("second", lambda: [dup])])
    assert [b.name for b in reg.all()] == ["GoodBlock"]
    assert [p.source for p in reg.problems] == ["second"]


def test_a_check_that_itself_crashes_is_reported() -> None:
    class Weird:
        __name__ = "WeirdBlock"

    reg = BlockRegistry(sources=[("odd", lambda: [Weird, GOOD])])  # type: ignore[list-item]
    assert [b.name for b in reg.all()] == ["GoodBlock"]
    assert len(reg.problems) == 1 and reg.problems[0].source == "odd"


def test_a_source_that_raises_is_reported_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> list[type[Block]]:
        raise ImportError("No module named 'provider_sdk'")

    with caplog.at_level(logging.WARNING):
        reg = BlockRegistry(sources=[("plugin-a", broken), ("builtin", lambda: [GOOD])])
        assert [b.name for b in reg.all()] == ["GoodBlock"]
    assert len(reg.problems) == 1
    assert reg.problems[0].source == "plugin-a"
    assert "ImportError" in reg.problems[0].problem and "provider_sdk" in reg.problems[0].problem
    assert "block skipped" in caplog.text


def test_a_source_whose_iteration_fails_midway_is_reported() -> None:
    def half() -> Any:
        yield OTHER_GOOD
        raise RuntimeError("lost connection to plugin index")

    reg = BlockRegistry(sources=[("half", half), ("builtin", lambda: [GOOD])])
    assert "GoodBlock" in {b.name for b in reg.all()}
    assert [p.source for p in reg.problems] == ["half"]


def test_loading_happens_once_and_lazily() -> None:
    loads: list[int] = []

    def source() -> list[type[Block]]:
        loads.append(1)
        return [GOOD]

    reg = BlockRegistry(sources=[("s", source)])
    assert loads == []
    reg.all()
    reg.get(GOOD.id)
    len(reg)
    assert loads == [1]


def test_disabled_by_id_and_by_name_case_insensitive() -> None:
    flagged = make_block("FlaggedBlock", "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b13", disabled=True)
    reg = registry(GOOD, OTHER_GOOD, flagged, disabled=(f"  {GOOD.id.upper()} ", ""))
    assert reg.is_disabled(reg.get(GOOD.id))  # type: ignore[arg-type]
    assert not reg.is_disabled(reg.get(OTHER_GOOD.id))  # type: ignore[arg-type]
    assert reg.is_disabled(reg.get(flagged.id))  # type: ignore[arg-type]
    reg = registry(GOOD, OTHER_GOOD, disabled=("othergoodblock",))
    assert reg.is_disabled(reg.get(OTHER_GOOD.id))  # type: ignore[arg-type]
    assert not reg.is_disabled(reg.get(GOOD.id))  # type: ignore[arg-type]
    # Disabled blocks are still listed (and can be shown as disabled), not dropped.
    assert {b.name for b in reg.all()} == {"GoodBlock", "OtherGoodBlock"}


def test_get_by_name_with_or_without_suffix() -> None:
    reg = registry(GOOD, OTHER_GOOD)
    assert reg.get_by_name("goodblock") is reg.get(GOOD.id)
    assert reg.get_by_name(" OtherGood ") is reg.get(OTHER_GOOD.id)
    assert reg.get_by_name("missing") is None
    assert reg.get("no-such-id") is None


def test_builtin_blocks_load_cleanly_with_unique_ids() -> None:
    reg = BlockRegistry(sources=BlockRegistry.default_sources()[: len(BUILTIN_MODULES)])
    blocks = reg.all()
    assert reg.problems == []
    assert len(blocks) >= 10
    assert len({b.id for b in blocks}) == len(blocks)
    assert all(is_uuid(b.id) and b.name.endswith("Block") for b in blocks)
    assert [b.name for b in blocks] == sorted(b.name for b in blocks)


def test_listing_builtin_metadata_does_not_import_provider_sdks() -> None:
    code = (
        "import sys\n"
        "from blockpilot.blocks.registry import BlockRegistry\n"
        "r = BlockRegistry()\n"
        "assert r.all(), 'no blocks'\n"
        "[b.info() for b in r.all()]\n"
        "[b.Input.jsonschema() for b in r.all()]\n"
        "bad = [m for m in ('smtplib', 'email.mime.text', 'aiosmtpd') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_importing_blockpilot_does_not_load_block_modules() -> None:
    code = (
        "import sys\n"
        "import blockpilot, blockpilot.blocks.registry, blockpilot.pilot\n"
        "loaded = [m for m in sys.modules if m.startswith('blockpilot.blocks.library.')]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_a_block_that_cannot_be_instantiated_is_reported_not_fatal() -> None:
    # Regression: instantiation happened outside the error handling, so one abstract or
    # broken block class made the whole registry (and start-up) fail.
    abstract = make_block("AbstractBlock", "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b14", run=None)
    abstract.__abstractmethods__ = frozenset({"run"})

    def explode(self: Block) -> None:
        raise RuntimeError("needs an SDK client")

    exploding = make_block(
        "ExplodingBlock", "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b15", __init__=explode
    )
    reg = registry(GOOD, abstract, exploding, OTHER_GOOD)
    assert {b.name for b in reg.all()} == {"GoodBlock", "OtherGoodBlock"}
    problems = " | ".join(p.problem for p in reg.problems)
    assert len(reg.problems) == 2, problems
    assert "AbstractBlock" in problems and "ExplodingBlock" in problems
    assert "needs an SDK client" in problems


def test_run_that_is_a_coroutine_not_an_async_generator_is_rejected() -> None:
    async def run(self: Block, input_data: Any, **kwargs: Any) -> Any:
        return {"result": input_data.text}

    assert_rejected(
        make_block("ReturningBlock", "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b16", run=run),
        "run must be an async generator",
    )


def test_run_returning_an_async_iterator_is_accepted() -> None:
    def run(self: Block, input_data: Any, **kwargs: Any) -> Any:
        async def gen() -> Any:
            yield "result", input_data.text

        return gen()

    assert (
        check_block_class(make_block("IterBlock", "5d6b1a58-4a0e-4f8e-9a51-6b2b7d2a9b17", run=run))
        == []
    )


def test_ids_are_case_insensitive() -> None:
    upper = make_block("UpperBlock", "5D6B1A58-4A0E-4F8E-9A51-6B2B7D2A9B18")
    reg = registry(GOOD, upper)
    assert reg.get(GOOD.id.upper()) is reg.get(GOOD.id) is not None
    assert reg.get(upper.id.lower()) is reg.get(upper.id) is not None
    # Two ids differing only in case are the same id.
    dup = make_block("ShoutingBlock", GOOD.id.upper())
    reg = registry(GOOD, dup)
    assert [b.name for b in reg.all()] == ["GoodBlock"]
    assert "already used by GoodBlock" in reg.problems[0].problem


# -- schemas checked without generating them (docs/performance.md#catalogue-scale) ---------


def test_plain_schemas_of_every_builtin_block_generate_and_serialise() -> None:
    """A schema judged plain is not generated at load time: that must be safe. Every
    built-in block's schemas are plain, and each one does generate and serialise."""
    registry = BlockRegistry()
    for block in registry.all():
        for schema in (block.Input, block.Output):
            assert plain_schema(schema), (block.name, schema)
            json.dumps(schema.model_json_schema())
            json.dumps(schema.jsonschema())


class Colour(enum.Enum):
    RED = object()


def _hooked(cls: Any, core_schema: Any, handler: Any) -> Any:
    return {"type": "object", "x-odd": object()}


def test_schemas_that_may_not_serialise_get_the_full_load_time_check() -> None:
    class WithEnum(BlockSchemaInput):
        colour: Colour = SchemaField(description="A colour")

    class WithHook(BlockSchemaInput):
        text: str = SchemaField(description="Text")
        __get_pydantic_json_schema__ = classmethod(_hooked)

    class WithCallableExtra(BlockSchemaInput):
        text: str = Field(description="Text", json_schema_extra=lambda schema: None)

    class WithOddDefault(BlockSchemaInput):
        when: Any = SchemaField(default=object(), description="Odd")

    class WithInfinity(BlockSchemaInput):
        limit: float = SchemaField(default=float("inf"), description="Limit")

    class Plain(BlockSchemaInput):
        text: str = SchemaField(description="Text")
        count: int | None = SchemaField(None, description="How many")
        tags: list[str] = SchemaField(default_factory=list, description="Tags")
        mode: Literal["a", "b"] = SchemaField("a", description="Mode")
        nested: dict[str, tuple[int, str]] = SchemaField(default_factory=dict, description="N")

    for schema in (WithEnum, WithHook, WithCallableExtra, WithOddDefault,
                   WithInfinity):  # fmt: skip
        assert not plain_schema(schema), schema
    assert plain_schema(Plain)
    bad = make_block("HookedBlock", input_cls=WithHook)
    assert_rejected(bad, "Input schema is not JSON-serialisable")
    assert check_block_class(make_block("PlainBlock", input_cls=Plain)) == []
