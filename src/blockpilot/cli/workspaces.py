"""``blockpilot workspaces``: move workspace files to another backend (docs/workspaces.md)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from blockpilot.cli.common import JsonFlag, wants_json
from blockpilot.cli.output import print_json, print_note, stdout_console
from blockpilot.errors import ConfigurationError
from blockpilot.settings import Settings
from blockpilot.storage.engine import create_engine, migrate
from blockpilot.storage.workspace_blobs import BlobMigration, migrate_blobs, open_blob_storage
from blockpilot.storage.workspaces import WorkspaceStore

app = typer.Typer(no_args_is_help=True)


async def _migrate(settings: Settings, to: str) -> BlobMigration:
    engine = create_engine(settings.effective_database_url)
    try:
        await migrate(engine)
        store = WorkspaceStore(engine)
        current = await store.recorded_backend() or settings.effective_workspace_url
        source = open_blob_storage(current, home=settings.home, engine=engine)
        target = open_blob_storage(to, home=settings.home, engine=engine)
        return await migrate_blobs(store, source, target)
    finally:
        await engine.dispose()


@app.command("migrate")
def migrate_command(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            metavar="URL",
            help="The new backend: file:, database: or s3://bucket/prefix.",
            show_default=False,
        ),
    ],
    json_output: JsonFlag = False,
) -> None:
    """Copy every workspace file to the backend URL, check it, then record that backend.

    Safe to interrupt and to run again: files already there are skipped. Then set
    BLOCKPILOT_WORKSPACE_URL=URL on every server and restart them.
    """
    settings = Settings.load(workspace_url=to)  # checks the URL like the setting
    target = settings.workspace_url
    if target is None:
        raise ConfigurationError("--to needs a backend: file:, database: or s3://bucket/prefix")
    report = asyncio.run(_migrate(settings, target))
    if wants_json(json_output):
        print_json(report.public())
    else:
        stdout_console().print(
            f"{report.files} files: {report.copied} copied, {report.already_there} already "
            f"on {report.target}, {len(report.damaged)} damaged."
        )
    if report.damaged:
        raise ConfigurationError(
            f"{len(report.damaged)} files could not be copied (their data is missing or does "
            f"not match its checksum): {', '.join(report.damaged[:10])}. Delete or rewrite "
            "them, then run this again; the backend was not switched."
        )
    print_note(
        f"Workspace files are now recorded on {report.target}: set "
        f"BLOCKPILOT_WORKSPACE_URL={report.target} on every server and restart them."
    )
