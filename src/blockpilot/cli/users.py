"""``blockpilot users``: create and list users."""

from __future__ import annotations

from typing import Annotated

import typer

from blockpilot.cli.common import JsonFlag, wants_json
from blockpilot.cli.output import print_json, print_note, stdout_console, table
from blockpilot.cli.runtime import with_pilot
from blockpilot.pilot import Pilot

app = typer.Typer(no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Unique user name (letters, digits, _ . @ -).")
    ],
) -> None:
    """Create a user and its first API key; prints {"id", "name", "api_key"}.

    The API key is shown only this once (it is stored hashed).
    """

    async def body(pilot: Pilot) -> dict[str, str]:
        user, api_key = await pilot.users.create(name)
        return {"id": user.id, "name": user.name, "api_key": api_key}

    created = with_pilot(body)
    print_json(created)
    print_note("Store the api_key now: it is shown only once.")


@app.command("list")
def list_users(json_output: JsonFlag = False) -> None:
    """List users (id, name, creation time)."""

    async def body(pilot: Pilot) -> list[dict[str, str]]:
        return [
            {"id": u.id, "name": u.name, "created_at": u.created_at.isoformat()}
            for u in await pilot.users.list()
        ]

    found = with_pilot(body)
    if wants_json(json_output):
        print_json(found)
        return
    if not found:
        print_note("No users yet; create one with `blockpilot users create NAME`.")
        return
    stdout_console().print(
        table(
            "Users",
            ["Name", "Id", "Created"],
            ([u["name"], u["id"], u["created_at"][:19].replace("T", " ")] for u in found),
        )
    )
