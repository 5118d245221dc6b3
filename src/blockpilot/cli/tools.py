"""``blockpilot tool`` (what the model sees) and ``blockpilot run`` (the same, for people)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from blockpilot.cli.blocks import example_input, find_block, inputs_table, json_text
from blockpilot.cli.common import JsonFlag, UserOption, resolve_user, wants_json
from blockpilot.cli.errors import EXIT_AUTH, EXIT_OK, EXIT_USAGE, exit_code_for
from blockpilot.cli.jsonarg import read_json_object, read_json_option
from blockpilot.cli.output import (
    print_error,
    print_json,
    print_warning,
    spinner,
    stdout_console,
    table,
    value_text,
)
from blockpilot.cli.runtime import with_pilot
from blockpilot.pilot import Pilot
from blockpilot.tools.responses import ToolResponseBase

SessionOption = Annotated[
    str | None,
    typer.Option(
        "--session",
        "-s",
        help="Chat session id from an earlier response; omit it to start a new session.",
        show_default=False,
    ),
]


def tool(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="Tool name: find_block or run_block.", show_default=False
        ),
    ],
    user: UserOption,
    args: Annotated[
        str,
        typer.Option(
            "--args", "-a", help="The tool's arguments as a JSON object ('-' reads stdin)."
        ),
    ] = "{}",
    session: SessionOption = None,
) -> None:
    """Call a copilot tool exactly as the model would; prints its JSON response.

    Stdout carries exactly one JSON document: the response. The exit code is 0 for every
    outcome except type "error", which exits with the code of its error (see README).
    """
    arguments = read_json_option(args, "--args")

    async def body(pilot: Pilot) -> ToolResponseBase:
        found = await resolve_user(pilot, user)
        return await pilot.call_tool(name.strip(), arguments, user_id=found.id, session_id=session)

    doc = with_pilot(body).model_dump(mode="json")
    print_json(doc)
    if doc.get("type") == "error":
        raise typer.Exit(exit_code_for(doc.get("code")))


def run(
    block: Annotated[
        str,
        typer.Argument(
            metavar="BLOCK", help="Block id or name (e.g. CalculatorBlock).", show_default=False
        ),
    ],
    user: UserOption,
    input_json: Annotated[
        str,
        typer.Option(
            "--input", "-i", help="The block's inputs as a JSON object ('-' reads stdin)."
        ),
    ] = "{}",
    session: SessionOption = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Validate inputs and credentials; do not run the block."),
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Run a block for a user, with the user's own credentials, and show the outputs.

    Exits 0 when the block ran (or the dry run passed), 2 when inputs are missing or
    invalid, 4 when credentials must be connected first, otherwise per the error table.
    """
    input_data = read_json_object(input_json, "--input")

    async def body(pilot: Pilot) -> tuple[ToolResponseBase, str]:
        found = await resolve_user(pilot, user)
        target = find_block(pilot.registry, block)
        arguments = {"block_id": target.id, "input_data": input_data, "dry_run": dry_run}
        return await pilot.call_tool(
            "run_block", arguments, user_id=found.id, session_id=session
        ), found.name

    with spinner(f"Running {block.strip()[:80]}…"):
        response, user_name = with_pilot(body)
    doc = response.model_dump(mode="json")
    code = _exit_code(doc)
    if wants_json(json_output):
        print_json(doc)
    else:
        _render(doc, block=block.strip(), user=user_name)
    if code != EXIT_OK:
        raise typer.Exit(code)


def _exit_code(doc: dict[str, Any]) -> int:
    kind = doc.get("type")
    if kind == "error":
        return exit_code_for(doc.get("code"))
    if kind in ("block_details", "input_validation_error"):
        return EXIT_USAGE
    if kind in ("setup_requirements", "need_login", "review_required"):
        return EXIT_AUTH  # a person must act first
    return EXIT_OK


def _render(doc: dict[str, Any], *, block: str, user: str) -> None:
    console = stdout_console()
    kind = doc.get("type")
    if kind == "block_output":
        _render_output(console, doc)
    elif kind == "block_details":
        _render_details(console, doc, block=block, user=user)
    elif kind == "setup_requirements":
        _render_setup(console, doc, user=user)
    elif kind == "input_validation_error":
        _render_invalid(console, doc)
    elif kind == "review_required":
        _render_review(console, doc)
    elif kind == "error":
        print_error(doc.get("message", "the block could not run"))
    else:  # pragma: no cover - run_block has no other outcomes
        console.print(Text(doc.get("message", "")))


def _render_review(console: Console, doc: dict[str, Any]) -> None:
    """A call waiting for a person's approval (docs/approvals.md): what, why, and how."""
    console.print(
        Text(f"Approval needed: {doc['block_name']} ({doc['effect']}); nothing ran.", style="bold"),
        soft_wrap=True,
    )
    console.print(Text(f"Why: {doc['rule']}", style="dim"), soft_wrap=True)
    if doc.get("approval_url"):
        console.print(Text(f"Approve or reject at: {doc['approval_url']}"), soft_wrap=True)
    console.print(
        Text(
            f"Or: blockpilot reviews approve {doc['review_id']}  (then run the same command again)"
        ),
        soft_wrap=True,
    )


def _footer(doc: dict[str, Any]) -> Text:
    parts = []
    if doc.get("execution_id"):
        parts.append(f"execution {doc['execution_id']}")
    if doc.get("session_id"):
        parts.append(f"session {doc['session_id']}")
    return Text(" · ".join(parts), style="dim")


def _render_output(console: Console, doc: dict[str, Any]) -> None:
    if doc.get("is_dry_run"):
        console.print(Text(doc["message"], style="green"), soft_wrap=True)
    else:
        console.print(Text(f"✓ {doc['message']}", style="bold green"), soft_wrap=True)
        rows = [
            (name, value_text(value))
            for name, values in doc.get("outputs", {}).items()
            for value in values
        ]
        if rows:
            console.print(table(None, ["Output", "Value"], rows, no_wrap=()))
        else:
            console.print(Text("The block produced no outputs."))
    for used in doc.get("credentials_used") or []:
        console.print(
            Text(f"credentials used: {_describe_choice(used)}", style="dim"), soft_wrap=True
        )
    if doc.get("output_truncated"):
        print_warning(
            "some outputs were too large and were truncated; "
            "the full values are saved in the user's workspace"
        )
    console.print(_footer(doc), soft_wrap=True)


def _describe_choice(used: dict[str, Any]) -> str:
    name = used.get("title") or used.get("id")
    text = f"{used.get('field', 'credentials')} = {used.get('provider')} / {name}"
    return text + (f" ({used['reason']})" if used.get("reason") else "")


def _render_details(console: Console, doc: dict[str, Any], *, block: str, user: str) -> None:
    details = doc.get("block", {})
    name = details.get("name", block)
    console.print(Text(f"{name} needs inputs: pass them with --input.", style="bold yellow"))
    console.print(Text(details.get("description", "")), soft_wrap=True)
    console.print(inputs_table(details.get("inputs", {})))
    for cred in details.get("credentials") or []:
        label = cred.get("title") or cred.get("id")
        console.print(
            Text(f"will use credential: {cred.get('provider')} / {label}", style="dim"),
            soft_wrap=True,
        )
    example = json_text(example_input(details.get("inputs", {})))
    console.print(
        Text(f"Example: blockpilot run {name} --user {user} --input '{example}'", style="dim"),
        soft_wrap=True,
    )


def _render_setup(console: Console, doc: dict[str, Any], *, user: str) -> None:
    info = doc.get("setup_info", {})
    missing = info.get("requirements", {}).get("credentials", [])
    lines: list[Any] = [
        Text(
            f"{info.get('agent_name', 'This block')} needs credentials that are not connected yet:"
        )
    ]
    for entry in missing:
        types = entry.get("types") or [entry.get("type", "api_key")]
        scopes = entry.get("scopes") or []
        title = entry.get("title", entry.get("id"))
        line = f"• {title}: provider {entry.get('provider')}, type {' or '.join(types)}"
        if scopes:
            line += f", scopes {', '.join(scopes)}"
        if entry.get("setup_url"):
            line += f" (connect at {entry['setup_url']})"
        lines.append(Text(line))
    console.print(
        Panel(
            Group(*lines),
            title="Connect an account",
            title_align="left",
            border_style="yellow",
            expand=False,
        )
    )
    # Outside the panel, unwrapped, so the commands can be copied whole.
    console.print(Text("Add it, then run the block again:", style="dim"))
    for entry in missing:
        console.print(Text(f"  {_add_hint(entry, user)}"), soft_wrap=True)


def _add_hint(entry: dict[str, Any], user: str) -> str:
    provider = entry.get("provider", "PROVIDER")
    types = entry.get("types") or [entry.get("type", "api_key")]
    samples = {
        "api_key": {"provider": provider, "type": "api_key", "api_key": "..."},
        "user_password": {
            "provider": provider,
            "type": "user_password",
            "username": "...",
            "password": "...",
        },
        "host_scoped": {
            "provider": provider,
            "type": "host_scoped",
            "host": "api.example.com",
            "headers": {"Authorization": "..."},
        },
        "oauth2": {
            "provider": provider,
            "type": "oauth2",
            "access_token": "...",
            "refresh_token": "...",
            "scopes": entry.get("scopes") or [],
        },
    }
    kind = next(
        (t for t in ("api_key", "user_password", "host_scoped", "oauth2") if t in types), "api_key"
    )
    sample = json.dumps(samples[kind], ensure_ascii=False)
    return f"blockpilot credentials add --user {user} --json '{sample}'"


def _render_invalid(console: Console, doc: dict[str, Any]) -> None:
    print_error(doc.get("message", "invalid input"))
    errors = doc.get("errors") or {}
    if errors:
        console.print(
            table(
                "Problems",
                ["Field", "Problem"],
                ([f, "; ".join(m)] for f, m in errors.items()),
                no_wrap=(),
            )
        )
    console.print(inputs_table(doc.get("inputs", {})))


def register(app: typer.Typer) -> None:
    app.command("tool")(tool)
    app.command("run")(run)
