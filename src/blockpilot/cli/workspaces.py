"""``blockpilot workspaces``: move workspace files to another backend, sweep orphan blobs
(docs/workspaces.md)."""

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
from blockpilot.storage.workspace_holds import ORPHAN_MIN_AGE_SECONDS, sweep_orphan_blobs
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


async def _sweep(settings: Settings, min_age_seconds: float) -> tuple[str, int]:
    engine = create_engine(settings.effective_database_url)
    try:
        await migrate(engine)
        store = WorkspaceStore(engine)
        current = await store.recorded_backend() or settings.effective_workspace_url
        blobs = open_blob_storage(current, home=settings.home, engine=engine)
        try:
            return current, await sweep_orphan_blobs(engine, blobs, min_age_seconds=min_age_seconds)
        finally:
            await blobs.aclose()
    finally:
        await engine.dispose()


@app.command("sweep")
def sweep_command(
    min_age: Annotated[
        float,
        typer.Option(
            "--min-age",
            metavar="SECONDS",
            min=0,
            help="Leave alone blobs younger than this (an upload may be about to name them).",
        ),
    ] = ORPHAN_MIN_AGE_SECONDS,
    json_output: JsonFlag = False,
) -> None:
    """Remove orphan blobs: data that no workspace file names and nobody is reading or
    writing (left by a server killed mid-write or before it removed a replaced file).

    Safe while servers run: only blobs older than --min-age are looked at. Servers do the
    same for what they know of when they start.
    """
    settings = Settings.load()
    backend, removed = asyncio.run(_sweep(settings, min_age))
    if wants_json(json_output):
        print_json({"backend": backend, "removed": removed})
    else:
        stdout_console().print(f"{removed} orphan blobs removed from {backend}.")
