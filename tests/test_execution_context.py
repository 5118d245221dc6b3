"""What ``ExecutionContext.attach`` gives a run stays out of the serialised form and travels
with copies of the context (it lives in a slot, docs/performance.md)."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from blockpilot.executions.context import ExecutionContext


def test_a_context_without_attachments_says_so() -> None:
    context = ExecutionContext(user_id="u")
    assert context.provider_base_url("openai") is None
    with pytest.raises(RuntimeError, match="no workspace attached"):
        _ = context.files
    with pytest.raises(RuntimeError, match="no HTTP client attached"):
        _ = context.http


async def test_attachments_are_used_and_kept_by_copies_but_never_serialised() -> None:
    http = object()  # the context hands back what it was given
    context = ExecutionContext(user_id="u", node_exec_id="e-1").attach(
        http=http,  # type: ignore[arg-type]
        provider_urls={"openai": "http://127.0.0.1:9"},
    )
    assert context.http is http
    assert await context.refresh_rejected(None) is None  # type: ignore[arg-type]
    for copied in (
        context.model_copy(),
        context.model_copy(update={"node_exec_id": "e-2"}),
        copy.copy(context),
        copy.deepcopy(context),
    ):
        assert copied.http is http
        assert copied.provider_base_url("openai") == "http://127.0.0.1:9"
    assert "http" not in context.model_dump() and "_attached" not in context.model_dump()
    assert "127.0.0.1" not in context.model_dump_json()


def test_of_is_the_constructor() -> None:
    fields = {"user_id": "u", "node_exec_id": "e-1", "graph_version": "2", "dry_run": True}
    built, made = ExecutionContext.of(fields), ExecutionContext(**fields)  # type: ignore[arg-type]
    assert built == made and built.model_fields_set == made.model_fields_set
    assert built.graph_version == 2  # validated (coerced) the same way
    with pytest.raises(ValidationError) as by_of:
        ExecutionContext.of({"graph_version": "x"})
    with pytest.raises(ValidationError) as by_init:
        ExecutionContext(graph_version="x")  # type: ignore[call-arg,arg-type]
    assert by_of.value.errors() == by_init.value.errors()
