"""``blockpilot mcp`` (MCP over stdio for one local user) and ``blockpilot chat``."""

from __future__ import annotations

from typing import Annotated

import typer

from blockpilot.cli.common import UserOption
from blockpilot.cli.runtime import with_pilot


def mcp(user: UserOption) -> None:
    """Serve find_block and run_block over MCP on stdio, as USER (for Claude Desktop and co.)."""
    from blockpilot.mcp import serve_stdio

    with_pilot(lambda pilot: serve_stdio(pilot, user))


def chat(
    user: UserOption,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="OpenAI-compatible API base (BLOCKPILOT_CHAT_BASE_URL)."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model name (BLOCKPILOT_CHAT_MODEL).")
    ] = None,
    message: Annotated[
        str | None,
        typer.Option("--message", "-m", help="Send one message and stop after the answer."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Offer the tools in OpenAI strict mode.")
    ] = False,
) -> None:
    """Chat with a model that can use find_block and run_block for USER."""
    from blockpilot.chat import run_chat

    with_pilot(
        lambda pilot: run_chat(
            user,
            pilot=pilot,
            base_url=base_url,
            model=model,
            message=message,
            tool_format="openai-strict" if strict else "openai",
        )
    )


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)
    app.command("chat")(chat)
