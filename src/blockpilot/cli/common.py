"""Option types and small helpers the command modules share."""

from __future__ import annotations

from typing import Annotated

import typer

from blockpilot.cli.runtime import state
from blockpilot.pilot import Pilot
from blockpilot.storage.users import User

UserOption = Annotated[
    str, typer.Option("--user", "-u", help="User id or name.", show_default=False)
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def wants_json(flag: bool) -> bool:
    """The command's own ``--json`` or the root's ``blockpilot --json ...``."""
    return flag or state().json


async def resolve_user(pilot: Pilot, id_or_name: str) -> User:
    """The user named by id or name; :class:`UserNotFoundError` (exit 3) otherwise."""
    return await pilot.users.get(id_or_name.strip())
