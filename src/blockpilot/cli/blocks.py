"""``blockpilot blocks``: list, search and inspect the block catalogue."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.panel import Panel
from rich.text import Text

from blockpilot.blocks.base import Block
from blockpilot.blocks.registry import BlockRegistry
from blockpilot.blocks.schema import get_inputs_from_schema
from blockpilot.cli.common import JsonFlag, wants_json
from blockpilot.cli.output import print_json, print_note, print_warning, stdout_console, table
from blockpilot.cli.runtime import with_pilot
from blockpilot.errors import BlockNotFoundError
from blockpilot.pilot import Pilot

app = typer.Typer(no_args_is_help=True)


def find_block(registry: BlockRegistry, id_or_name: str) -> Block:
    """A block by id or by name (case-insensitive, ``Block`` suffix optional)."""
    key = id_or_name.strip()
    block = registry.get(key) or registry.get(key.lower()) or registry.get_by_name(key)
    if block is None:
        raise BlockNotFoundError(
            f"No block {key[:100]!r}; find one with `blockpilot blocks search WORDS` "
            "or `blockpilot blocks list`"
        )
    return block


def block_row(pilot: Pilot, block: Block) -> dict[str, Any]:
    info = block.info()
    info["disabled"] = pilot.registry.is_disabled(block)
    info["copilot_excluded"] = pilot.catalog.exclusions.excludes(block)
    info["providers"] = sorted(
        {p for field in block.Input.credentials_fields().values() for p in field.provider}
    )
    return info


def credentials_requirements(block: Block) -> list[dict[str, Any]]:
    return [
        {
            "field": name,
            "providers": sorted(info.provider),
            "types": sorted(info.supported_types),
            "scopes": sorted(info.required_scopes),
            "discriminator": info.discriminator,
            "discriminator_mapping": dict(info.discriminator_mapping)
            if info.discriminator_mapping
            else None,
        }
        for name, info in block.Input.credentials_fields().items()
    ]


def block_document(pilot: Pilot, block: Block) -> dict[str, Any]:
    return {
        **block_row(pilot, block),
        "input_schema": block.Input.jsonschema(),
        "output_schema": block.Output.jsonschema(),
        "credentials": credentials_requirements(block),
    }


def _report_problems(pilot: Pilot) -> None:
    for problem in pilot.registry.problems:
        print_warning(f"skipped block from {problem.source}: {problem.problem}")


@app.command("list")
def list_blocks(json_output: JsonFlag = False) -> None:
    """List every loaded block, including disabled and graph-only ones."""

    async def body(pilot: Pilot) -> list[dict[str, Any]]:
        rows = [block_row(pilot, b) for b in pilot.registry.all()]
        _report_problems(pilot)
        return rows

    rows = with_pilot(body)
    if wants_json(json_output):
        print_json(rows)
        return

    def status(row: dict[str, Any]) -> str:
        if row["disabled"]:
            return "disabled"
        return "graph only" if row["copilot_excluded"] else "ok"

    def provider(row: dict[str, Any]) -> str:
        return ", ".join(row["providers"]) or "(no account)"

    console = stdout_console()
    console.print(
        table(
            f"Blocks ({len(rows)}), by the provider whose account they use",
            ["Provider", "Name", "Effect", "Status", "Id", "Description"],
            (
                [provider(r), r["name"], r["effect"], status(r), r["id"], r["description"]]
                for r in sorted(rows, key=lambda r: (provider(r), r["name"]))
            ),
            optional=("Description",),
            width=console.width,
        )
    )


@app.command("search")
def search(
    query: Annotated[
        list[str],
        typer.Argument(
            metavar="QUERY", help="Keywords, a block name or a block id.", show_default=False
        ),
    ],
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100, help="At most this many results.")
    ] = 10,
    json_output: JsonFlag = False,
) -> None:
    """Search the blocks the copilot can use (the find_block ranking)."""
    text = " ".join(query).strip()

    async def body(pilot: Pilot) -> list[dict[str, Any]]:
        return [block_row(pilot, b) for b in pilot.catalog.search(text, limit)] if text else []

    rows = with_pilot(body)
    if wants_json(json_output):
        print_json(rows)
        return
    if not rows:
        print_note(
            f"No blocks found for {text!r}; "
            "try broader keywords such as 'email', 'http', 'text', 'ai'."
        )
        return
    console = stdout_console()
    console.print(
        table(
            f"Blocks matching {text!r}",
            ["Name", "Id", "Categories", "Description"],
            ([r["name"], r["id"], r["categories"], r["description"]] for r in rows),
            optional=("Categories",),
            width=console.width,
        )
    )


@app.command("show")
def show(
    id_or_name: Annotated[
        str, typer.Argument(metavar="ID_OR_NAME", help="Block id or name.", show_default=False)
    ],
    json_output: JsonFlag = False,
) -> None:
    """Show a block: metadata, inputs, outputs and the credentials it needs."""

    async def body(pilot: Pilot) -> dict[str, Any]:
        return block_document(pilot, find_block(pilot.registry, id_or_name))

    doc = with_pilot(body)
    if wants_json(json_output):
        print_json(doc)
        return
    console = stdout_console()
    status = (
        "disabled"
        if doc["disabled"]
        else ("graph only (not in the copilot)" if doc["copilot_excluded"] else "ok")
    )
    console.print(
        Panel(
            Group(
                Text(doc["description"]),
                Text(""),
                Text(f"id: {doc['id']}"),
                Text(f"type: {doc['block_type']}    status: {status}"),
                Text(f"categories: {', '.join(doc['categories'])}"),
            ),
            title=Text(doc["name"], style="bold"),
            title_align="left",
            expand=False,
        )
    )
    console.print(inputs_table(doc["input_schema"]))
    if doc["credentials"]:
        console.print(
            table(
                "Credentials",
                ["Field", "Providers", "Types", "Scopes"],
                ([c["field"], c["providers"], c["types"], c["scopes"]] for c in doc["credentials"]),
            )
        )
    console.print(outputs_table(doc["output_schema"]))


def credential_fields_of(schema: dict[str, Any]) -> set[str]:
    """Names of the credentials fields in an input JSON schema (marked by CredentialsField)."""
    return {name for name, prop in _properties(schema).items() if prop.get("credentials")}


def _properties(schema: Any) -> dict[str, dict[str, Any]]:
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    return {k: v for k, v in properties.items() if isinstance(v, dict)}


def _choices(prop: dict[str, Any]) -> list[Any] | None:
    if isinstance(prop.get("enum"), list):
        return list(prop["enum"])
    for option in prop.get("anyOf", []):
        if isinstance(option, dict) and isinstance(option.get("enum"), list):
            return list(option["enum"])
    return None


def _type_label(field: dict[str, Any], prop: dict[str, Any]) -> str:
    choices = _choices(prop)
    if choices:
        return "one of: " + ", ".join(str(c) for c in choices)
    return str(field["type"])


def inputs_table(schema: dict[str, Any]) -> Any:
    """The non-credential inputs of an input JSON schema, as a table."""
    inputs = get_inputs_from_schema(schema, credential_fields_of(schema))
    if not inputs:
        return Text("This block takes no inputs.")
    props = _properties(schema)
    return table(
        "Inputs",
        ["Name", "Type", "Required", "Default", "Description"],
        (
            [
                i["name"],
                _type_label(i, props.get(i["name"], {})),
                i["required"],
                "" if i["required"] else json_text(i["default"]),
                i["description"],
            ]
            for i in inputs
        ),
    )


def outputs_table(schema: dict[str, Any]) -> Any:
    props = _properties(schema)
    return table(
        "Outputs",
        ["Name", "Type", "Description"],
        (
            [o["name"], _type_label(o, props.get(o["name"], {})), o["description"]]
            for o in get_inputs_from_schema(schema)
        ),
    )


def example_input(schema: dict[str, Any]) -> dict[str, Any]:
    """A placeholder value for every required non-credential input (for usage hints)."""
    props = _properties(schema)
    skip = credential_fields_of(schema)
    example: dict[str, Any] = {}
    for name in schema.get("required", []) if isinstance(schema, dict) else []:
        if name in skip:
            continue
        prop = props.get(name, {})
        choices = _choices(prop)
        kind = prop.get("type")
        if choices:
            example[name] = choices[0]
        elif kind in ("number", "integer"):
            example[name] = 1
        elif kind == "boolean":
            example[name] = True
        elif kind == "object":
            example[name] = {}
        elif kind == "array":
            example[name] = []
        else:
            example[name] = "..."
    return example


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
