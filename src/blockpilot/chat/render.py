"""How the chat looks in the terminal (Rich): messages, tool calls, outcomes, setup links."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from blockpilot.mcp.results import add_credential_command, setup_links
from blockpilot.tools.responses import ToolResponseBase

_MAX_ARGS_CHARS = 300
_STYLES = {
    "error": "red",
    "need_login": "red",
    "setup_requirements": "yellow",
    "block_output": "green",
    "input_validation_error": "yellow",
}


class ChatView:
    """Prints one chat to a Rich console."""

    def __init__(self, console: Console, *, user_hint: str = "USER") -> None:
        self.console = console
        self.user_hint = user_hint

    def started(self, model: str, session_id: str) -> None:
        self.console.print(
            Text(f"blockpilot chat · model {model} · session {session_id}", style="dim")
        )

    def user(self, text: str) -> None:
        self.console.print(Text("you › ", style="bold blue") + Text(text))

    def assistant(self, text: str) -> None:
        self.console.print(Text("assistant › ", style="bold magenta") + Text(text))

    def tool_call(self, name: str, arguments: Any) -> None:
        shown = (
            arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        )
        if len(shown) > _MAX_ARGS_CHARS:
            shown = shown[:_MAX_ARGS_CHARS] + "…"
        self.console.print(
            Text("  → ", style="cyan")
            + Text(name, style="bold cyan")
            + Text(" " + shown, style="cyan")
        )

    def tool_result(self, response: ToolResponseBase) -> None:
        kind = str(response.type)
        style = _STYLES.get(kind, "dim")
        self.console.print(
            Text("  ← ", style=style)
            + Text(kind, style=f"bold {style}")
            + Text(": " + response.message, style=style)
        )
        if kind == "setup_requirements":
            self.setup(response.model_dump(mode="json"))

    def setup(self, data: dict[str, Any]) -> None:
        block = (data.get("setup_info") or {}).get("agent_name") or "This block"
        lines: list[Text] = [Text(f"{block} needs an account connected before it can run.")]
        for link in setup_links(data):
            if link.url:
                lines.append(
                    Text.from_markup(
                        f"• {escape(link.provider_name)}: "
                        f"[link={escape(link.url)}]{escape(link.url)}[/link]"
                    )
                )
            else:
                lines.append(
                    Text(f"• {link.provider_name}: {add_credential_command(link, self.user_hint)}")
                )
        lines.append(Text("Connect it, then tell the assistant to try again.", style="dim"))
        self.console.print(
            Panel(Group(*lines), title="Connect an account", border_style="yellow", expand=False)
        )

    def warning(self, text: str) -> None:
        self.console.print(Text(text, style="yellow"))

    def error(self, text: str) -> None:
        self.console.print(Text("error: " + text, style="bold red"))
