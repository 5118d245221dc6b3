"""``blockpilot keys``: users' API keys, and the encryption keys of stored credentials."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from blockpilot.cli.common import JsonFlag, UserOption, resolve_user, wants_json
from blockpilot.cli.output import print_json, print_note, stderr_console, stdout_console, table
from blockpilot.cli.runtime import with_pilot
from blockpilot.credentials.crypto import KeyRing, load_or_create_key_file
from blockpilot.errors import NotFoundError
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings

app = typer.Typer(no_args_is_help=True)


def _active_key_id(settings: Settings) -> str:
    """Id of the key new ciphertexts use: first of BLOCKPILOT_ENCRYPTION_KEYS, else the key file."""
    keys = settings.encryption_keys
    if keys:
        return KeyRing.key_id_of(keys[0].get_secret_value())
    return KeyRing.key_id_of(load_or_create_key_file(settings.home / "encryption.key"))


@app.command("create")
def create(user: UserOption) -> None:
    """Create another API key for a user; prints {"user_id", "user_name", "api_key",
    "api_key_id"} (the id names the key in `policy set --key`)."""

    async def body(pilot: Pilot) -> dict[str, str]:
        found = await resolve_user(pilot, user)
        key = await pilot.users.create_api_key(found.id)
        owner = await pilot.users.owner_of_api_key(key)
        assert owner is not None
        return {
            "user_id": found.id,
            "user_name": found.name,
            "api_key": key,
            "api_key_id": owner.api_key_id,
        }

    print_json(with_pilot(body))
    print_note("Store the api_key now: it is shown only once.")


@app.command("list")
def list_keys(user: UserOption, json_output: JsonFlag = False) -> None:
    """A user's API keys: id, the first characters, when made and revoked (never the key)."""

    async def body(pilot: Pilot) -> list[dict[str, str | None]]:
        found = await resolve_user(pilot, user)
        return [
            {
                "id": k.id,
                "prefix": k.prefix,
                "created_at": k.created_at.isoformat(),
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }
            for k in await pilot.users.api_keys(found.id)
        ]

    keys = with_pilot(body)
    if wants_json(json_output):
        print_json({"keys": keys})
        return
    console = stdout_console()
    rows = [
        [k["id"], f"{k['prefix']}…", (k["created_at"] or "")[:19], (k["revoked_at"] or "")[:19]]
        for k in keys
    ]
    console.print(table("API keys", ["Id", "Key", "Created", "Revoked"], rows, width=console.width))


@app.command("revoke")
def revoke(
    key: Annotated[
        str,
        typer.Argument(metavar="KEY", help="The API key to revoke (bp_...).", show_default=False),
    ],
) -> None:
    """Revoke an API key; requests using it are refused from now on."""

    async def body(pilot: Pilot) -> bool:
        return await pilot.users.revoke_api_key(key.strip())

    if not with_pilot(body):
        raise NotFoundError("No active API key matches; it is unknown or already revoked")
    stdout_console().print("API key revoked.")


@app.command("generate")
def generate() -> None:
    """Print a new random encryption key (for BLOCKPILOT_ENCRYPTION_KEYS)."""
    sys.stdout.write(KeyRing.generate_key() + "\n")


@app.command("rotate")
def rotate(json_output: JsonFlag = False) -> None:
    """Re-encrypt every stored credential under the first key of BLOCKPILOT_ENCRYPTION_KEYS.

    Set BLOCKPILOT_ENCRYPTION_KEYS="NEW,OLD" (new key first), run this, then drop OLD.
    Safe to interrupt and to run again: rows already under the new key are skipped.
    """

    async def body(pilot: Pilot) -> dict[str, object]:
        store = pilot.credential_store
        pending = await store.count_needing_rotation()
        active = _active_key_id(pilot.settings)
        rotated = 0
        if pending:
            console = stderr_console()
            with Progress(
                SpinnerColumn(),
                TextColumn("Re-encrypting credentials"),
                BarColumn(),
                MofNCompleteColumn(),
                console=console,
                transient=True,
                disable=not console.is_terminal,
            ) as progress:
                task = progress.add_task("rotate", total=pending)
                rotation = asyncio.ensure_future(store.rotate_keys())
                while not rotation.done():
                    remaining = await store.count_needing_rotation()
                    progress.update(task, completed=max(0, pending - remaining))
                    await asyncio.wait({rotation}, timeout=0.2)
                rotated = rotation.result()
                progress.update(task, completed=pending)
        return {
            "rotated": rotated,
            "active_key_id": active,
            "remaining": await store.count_needing_rotation(),
        }

    result = with_pilot(body)
    if wants_json(json_output):
        print_json(result)
        return
    if result["rotated"]:
        stdout_console().print(
            f"Re-encrypted {result['rotated']} credential(s) under key {result['active_key_id']}. "
            "You can now remove the old key(s) from BLOCKPILOT_ENCRYPTION_KEYS.",
            soft_wrap=True,
        )
    else:
        stdout_console().print(
            "Nothing to rotate: every stored credential is already encrypted with key "
            f"{result['active_key_id']}.",
            soft_wrap=True,
        )
