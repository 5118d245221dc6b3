"""``blockpilot credentials``: a user's stored credentials. Secrets go in, never come out."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from blockpilot.cli.common import JsonFlag, UserOption, resolve_user, wants_json
from blockpilot.cli.jsonarg import read_json_object
from blockpilot.cli.output import print_json, print_note, stdout_console, table
from blockpilot.cli.runtime import with_pilot
from blockpilot.credentials.models import CredentialsMeta
from blockpilot.errors import CredentialNotFoundError
from blockpilot.pilot import Pilot

app = typer.Typer(no_args_is_help=True)

_EXAMPLE = '{"provider": "openai", "type": "api_key", "api_key": "sk-...", "title": "My key"}'


def _public(meta: CredentialsMeta) -> dict[str, Any]:
    return meta.model_dump(mode="json")


@app.command("add")
def add(
    user: UserOption,
    payload: Annotated[
        str,
        typer.Option(
            "--json",
            help=(
                f"The credential as a JSON object, e.g. '{_EXAMPLE}'. Types: api_key (api_key), "
                "oauth2 (access_token, refresh_token, scopes), user_password (username, password; "
                "host for smtp: the server it is sent to), "
                "host_scoped (host, headers). Use '-' to read it from stdin (keeps secrets out of "
                "shell history)."
            ),
            show_default=False,
        ),
    ],
    default: Annotated[
        bool,
        typer.Option("--default", help="Make it the user's default credential for its provider."),
    ] = False,
) -> None:
    """Store a credential for a user (encrypted); prints its metadata, never the secret."""
    data = read_json_object(payload, "--json")

    async def body(pilot: Pilot) -> CredentialsMeta:
        found = await resolve_user(pilot, user)
        return await pilot.add_credentials(found.id, data, is_default=default)

    print_json(_public(with_pilot(body)))


@app.command("list")
def list_credentials(user: UserOption, json_output: JsonFlag = False) -> None:
    """List a user's credentials: metadata only, newest first."""

    async def body(pilot: Pilot) -> list[CredentialsMeta]:
        found = await resolve_user(pilot, user)
        return await pilot.credential_store.list_meta(found.id)

    metas = with_pilot(body)
    if wants_json(json_output):
        print_json([_public(m) for m in metas])
        return
    if not metas:
        print_note(
            "No credentials yet; add one with "
            f"`blockpilot credentials add --user {user} --json '{_EXAMPLE}'`."
        )
        return
    rows = (
        [
            m.provider,
            m.type,
            m.title,
            _flags(m),
            m.id,
            m.host or (", ".join(m.scopes) if m.scopes else ""),
            m.created_at,
            m.last_used_at,
        ]
        for m in metas
    )
    console = stdout_console()
    console.print(
        table(
            "Credentials",
            ["Provider", "Type", "Title", "Flags", "Id", "Host / scopes", "Created", "Last used"],
            rows,
            optional=("Host / scopes", "Created", "Last used"),
            width=console.width,
            wide=140,
        )
    )


def _flags(meta: CredentialsMeta) -> str:
    flags = []
    if meta.is_default:
        flags.append("default")
    if meta.needs_host:
        flags.append("host needed: blockpilot credentials set-host")
    elif meta.needs_reauthorization:
        flags.append("reconnect needed")
    return ", ".join(flags)


@app.command("set-host")
def set_host(
    user: UserOption,
    credential_id: Annotated[
        str, typer.Argument(metavar="ID", help="The credential's id.", show_default=False)
    ],
    host: Annotated[
        str,
        typer.Argument(
            metavar="HOST[:PORT]",
            help="The server the credential is for, e.g. smtp.example.com:587.",
            show_default=False,
        ),
    ],
) -> None:
    """Bind an SMTP credential to its server (needed once for those stored before the binding);
    it is then sent to that server only. Prints its metadata."""

    async def body(pilot: Pilot) -> CredentialsMeta:
        found = await resolve_user(pilot, user)
        return await pilot.set_credential_host(found.id, credential_id.strip(), host)

    print_json(_public(with_pilot(body)))


@app.command("delete")
def delete(
    user: UserOption,
    credential_id: Annotated[
        str, typer.Argument(metavar="ID", help="The credential's id.", show_default=False)
    ],
) -> None:
    """Delete one of a user's credentials."""

    async def body(pilot: Pilot) -> bool:
        found = await resolve_user(pilot, user)
        return await pilot.credential_store.delete(found.id, credential_id.strip())

    if not with_pilot(body):
        raise CredentialNotFoundError(
            f"No credential {credential_id[:80]!r} for user {user[:80]!r}"
        )
    stdout_console().print(f"Deleted credential {credential_id}.", soft_wrap=True, markup=False)
