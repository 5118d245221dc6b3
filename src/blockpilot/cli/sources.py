"""``blockpilot sources``: import an API description so its operations become blocks.

See docs/sources.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer

from blockpilot.cli.common import JsonFlag, wants_json
from blockpilot.cli.output import print_json, stdout_console, table
from blockpilot.cli.runtime import with_pilot
from blockpilot.errors import InvalidInputError
from blockpilot.oauth.flow import parse_scopes
from blockpilot.pilot import Pilot
from blockpilot.sources.base import SourceOptions

app = typer.Typer(no_args_is_help=True)


def parse_headers(values: Sequence[str]) -> dict[str, str]:
    """``--header 'K: V'`` values as a dict; a typed error for one without a colon."""
    headers: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition(":")
        if not sep or not key.strip() or any(c in value for c in "\r\n"):
            raise InvalidInputError("--header must look like 'Name: value' (one line)")
        headers[key.strip()] = text.strip()
    return headers


NameArg = Annotated[
    str,
    typer.Argument(
        metavar="NAME",
        help="Source name: the credentials provider name and the prefix of its block names.",
        show_default=False,
    ),
]


@app.command("add")
def add(
    kind: Annotated[
        str,
        typer.Argument(metavar="KIND", help="Kind of source: openapi or mcp.", show_default=False),
    ],
    name: NameArg,
    spec: Annotated[
        str | None,
        typer.Argument(
            metavar="SPEC",
            help="openapi: the description, a file path or an http(s) URL (JSON or YAML). "
            "mcp: the server's URL (or give --command).",
            show_default=False,
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Where the API is (default: the description's first server). Allowed even "
            "on a private network, for this source's blocks only.",
        ),
    ] = None,
    include_tag: Annotated[
        list[str] | None,
        typer.Option("--include-tag", help="Only operations with this tag (repeatable)."),
    ] = None,
    include_operation: Annotated[
        list[str] | None,
        typer.Option("--include-operation", help="Only this operationId (repeatable)."),
    ] = None,
    auth: Annotated[
        str,
        typer.Option(
            "--auth",
            help="mcp: none, bearer (each user stores their own token for NAME), or oauth "
            "(each user connects their own account at the server's authorization server).",
        ),
    ] = "none",
    client_id: Annotated[
        str | None,
        typer.Option(
            "--client-id",
            help="mcp --auth oauth: your OAuth app's id (default: register one dynamically).",
        ),
    ] = None,
    client_secret: Annotated[
        str | None,
        typer.Option("--client-secret", help="mcp --auth oauth: its secret (stored encrypted)."),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="mcp --auth oauth: a scope to ask for (repeatable; default: the server's own).",
        ),
    ] = None,
    transport: Annotated[
        str,
        typer.Option(
            "--transport",
            help="mcp: streamable-http, sse (the older HTTP+SSE), or auto (streamable HTTP, "
            "falling back to SSE).",
        ),
    ] = "auto",
    command: Annotated[
        str | None,
        typer.Option(
            "--command",
            help="mcp: run this command and talk to it over stdio (one process per source, "
            "shared by every user: no per-user secrets).",
        ),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            help="mcp --command: K=V for the process (stored), or K to pass blockpilot's own "
            "value through (not stored; repeatable).",
        ),
    ] = None,
    include_tool: Annotated[
        list[str] | None,
        typer.Option("--include-tool", help="mcp: only this tool (repeatable)."),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header",
            help="mcp: 'K: V' sent when listing the tools (not stored; repeatable).",
        ),
    ] = None,
) -> None:
    """Import a source; prints {"name", "kind", "blocks", "skipped": [{"operation", "reason"}]}."""

    async def body(pilot: Pilot) -> dict[str, Any]:
        if kind.strip().lower() == "mcp":
            result = await pilot.sources.add_mcp(
                name,
                spec,
                auth=auth.strip().lower(),
                include_tools=tuple(include_tool or ()),
                headers=parse_headers(header or ()),
                transport=transport.strip().lower(),
                command=command,
                env=tuple(env or ()),
                client_id=client_id,
                client_secret=client_secret,
                scopes=tuple(parse_scopes(scope or ())),
            )
            return result.to_dict()
        if spec is None:
            raise InvalidInputError("SPEC is missing: give the description's file path or URL")
        text, location = await pilot.sources.read_spec(spec)
        options = SourceOptions(
            base_url=base_url,
            include_tags=tuple(include_tag or ()),
            include_operations=tuple(include_operation or ()),
            location=location,
        )
        return (await pilot.sources.add(kind.strip().lower(), name, text, options)).to_dict()

    print_json(with_pilot(body))


@app.command("list")
def list_sources(json_output: JsonFlag = False) -> None:
    """List the imported sources."""

    async def body(pilot: Pilot) -> list[dict[str, Any]]:
        return await pilot.sources.list()

    sources = with_pilot(body)
    if wants_json(json_output):
        print_json(sources)
        return
    console = stdout_console()
    if not sources:
        console.print("No sources. Import one with 'blockpilot sources add openapi NAME SPEC'.")
        return
    console.print(
        table(
            None,
            ["Name", "Kind", "Blocks", "Skipped", "Base URL", "Updated"],
            [
                [s["name"], s["kind"], s["blocks"], s["skipped"], s["base_url"], s["updated_at"]]
                for s in sources
            ],
            no_wrap=("name",),
            width=console.width,
        )
    )


@app.command("show")
def show(name: NameArg, json_output: JsonFlag = False) -> None:
    """A source's blocks (operation, method, path, effect, credentials) and what was skipped."""

    async def body(pilot: Pilot) -> dict[str, Any]:
        return await pilot.sources.show(name)

    doc = with_pilot(body)
    if wants_json(json_output):
        print_json(doc)
        return
    console = stdout_console()
    console.print(
        f"[bold]{doc['name']}[/bold] ({doc['kind']}) {doc['title'] or ''}\n"
        f"Base URL: {doc['base_url']}\nBlocks: {doc['blocks']}, skipped: {len(doc['skipped'])}"
    )
    console.print(
        table(
            None,
            ["Block", "Method", "Path", "Effect", "Credentials"],
            [
                [
                    op["name"],
                    op["method"],
                    op["path"],
                    op["effect"],
                    ", ".join(op["credentials"]) or "-",
                ]
                for op in doc["operations"]
            ],
            no_wrap=("block",),
            width=console.width,
        )
    )
    if doc["skipped"]:
        console.print(
            table(
                "Skipped",
                ["Operation", "Reason"],
                [[s["operation"], s["reason"]] for s in doc["skipped"]],
                no_wrap=(),
                width=console.width,
            )
        )


@app.command("refresh")
def refresh(
    name: NameArg,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", help="mcp: 'K: V' sent when listing the tools (repeatable)."),
    ] = None,
) -> None:
    """Parse the source again (re-fetching its URL, re-listing an MCP server's tools); block
    ids stay the same. Prints as add."""

    async def body(pilot: Pilot) -> dict[str, Any]:
        headers = parse_headers(header or ())
        return (await pilot.sources.refresh(name, headers=headers)).to_dict()

    print_json(with_pilot(body))


@app.command("remove")
def remove(name: NameArg) -> None:
    """Remove a source; its blocks disappear (stored credentials are kept)."""

    async def body(pilot: Pilot) -> None:
        await pilot.sources.remove(name)

    with_pilot(body)
    stdout_console().print(f"Source {name!r} removed.")
