"""Helpers for the tool tests (importable; conftest is not)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from blockpilot.blocks.base import Block
from blockpilot.blocks.registry import BlockRegistry
from blockpilot.pilot import Pilot
from tests.tools.bp_test_blocks import ALL_BLOCKS, CONFIG_DISABLED


def make_registry(
    blocks: Iterable[type[Block]] = ALL_BLOCKS, disabled: Iterable[str] = CONFIG_DISABLED
) -> BlockRegistry:
    blocks = tuple(blocks)
    return BlockRegistry(sources=[("test", lambda: blocks)], disabled=disabled)


async def call(
    pilot: Pilot, name: str, arguments: Any, *, user_id: str | None, session_id: str | None = None
) -> dict[str, Any]:
    """Call a tool as the model would and return the JSON the model would see."""
    response = await pilot.call_tool(name, arguments, user_id=user_id, session_id=session_id)
    data: dict[str, Any] = json.loads(response.to_json())
    assert {"type", "message", "session_id"} <= data.keys()
    return data


async def run_block(
    pilot: Pilot,
    user_id: str | None,
    block_id: Any,
    input_data: Any,
    *,
    session_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return await call(
        pilot,
        "run_block",
        {"block_id": block_id, "input_data": input_data, **extra},
        user_id=user_id,
        session_id=session_id,
    )


async def add_api_key(
    pilot: Pilot,
    user_id: str,
    provider: str = "openai",
    key: str = "sk-test-0123456789abcdef",
    **extra: Any,
) -> str:
    is_default = extra.pop("is_default", False)
    meta = await pilot.add_credentials(
        user_id,
        {"provider": provider, "type": "api_key", "api_key": key, **extra},
        is_default=is_default,
    )
    return meta.id


async def add_host_scoped(
    pilot: Pilot, user_id: str, host: str, headers: dict[str, str] | None = None, **extra: Any
) -> str:
    meta = await pilot.add_credentials(
        user_id,
        {
            "provider": "http",
            "type": "host_scoped",
            "host": host,
            "headers": headers or {"X-Api-Key": "hdr-0123456789"},
            **extra,
        },
    )
    return meta.id


async def add_oauth(
    pilot: Pilot, user_id: str, scopes: list[str], provider: str = "github", **extra: Any
) -> str:
    meta = await pilot.add_credentials(
        user_id,
        {
            "provider": provider,
            "type": "oauth2",
            "access_token": "gho_test_token_0123456789",
            "scopes": scopes,
            **extra,
        },
    )
    return meta.id
