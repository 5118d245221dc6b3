"""What ``ExecutionContext.attach`` gives a run stays out of the serialised form and travels
with copies of the context (it lives in a slot, docs/performance.md)."""

from __future__ import annotations

import copy

import pytest

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
