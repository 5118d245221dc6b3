"""run_block's answer is built by the response model's own validator (tools/outcomes.py):
the same response, fields and errors as the model's constructor gives."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from blockpilot.tools.outcomes import _validated
from blockpilot.tools.responses import BlockOutputResponse

FIELDS: dict[str, Any] = {
    "message": "Block 'EchoTextBlock' executed successfully",
    "block_id": "6a0f2c1e-1111-4a8e-9b51-000000000001",
    "block_name": "EchoTextBlock",
    "outputs": {"out": ["a", 1, None, {"k": [1.5]}]},
    "execution_id": "copilot-s-0123456789abcdef",
    "is_dry_run": False,
    "output_truncated": True,
    "credentials_used": [{"id": "c", "provider": "openai"}],
    "session_id": "s",
}


def test_the_same_response_as_the_constructor() -> None:
    built, made = _validated(BlockOutputResponse, FIELDS), BlockOutputResponse(**FIELDS)
    assert built == made
    assert built.model_fields_set == made.model_fields_set
    assert built.to_json() == made.to_json()
    assert built.type == "block_output" and type(built.type) is str  # defaults validated too


def test_the_same_errors_as_the_constructor() -> None:
    bad = {**FIELDS, "outputs": {"out": "not a list"}, "block_id": None}
    with pytest.raises(ValidationError) as built:
        _validated(BlockOutputResponse, bad)
    with pytest.raises(ValidationError) as made:
        BlockOutputResponse(**bad)
    assert built.value.errors() == made.value.errors()
