"""``blockpilot executions``: the audit trail of a user's block runs."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from blockpilot.cli.common import JsonFlag, UserOption, resolve_user, wants_json
from blockpilot.cli.output import print_json, print_note, stdout_console, table
from blockpilot.cli.runtime import with_pilot
from blockpilot.errors import ExecutionNotFoundError
from blockpilot.pilot import Pilot

app = typer.Typer(no_args_is_help=True)


def _duration(ms: float | None) -> str:
    if ms is None:
        return ""
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def _status(record: dict[str, Any]) -> str:
    if record["is_dry_run"]:
        return "dry run" if record["status"] == "completed" else f"{record['status']} (dry run)"
    return str(record["status"])


@app.command("list")
def list_executions(
    user: UserOption,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=1000, help="Show at most N runs.")
    ] = 20,
    json_output: JsonFlag = False,
) -> None:
    """A user's most recent block runs, newest first."""

    async def body(pilot: Pilot) -> list[dict[str, Any]]:
        found = await resolve_user(pilot, user)
        return [r.public() for r in await pilot.executions.list(found.id, limit=limit)]

    records = with_pilot(body)
    if wants_json(json_output):
        print_json(records)
        return
    if not records:
        print_note("No executions yet.")
        return
    console = stdout_console()
    console.print(
        table(
            "Executions",
            ["Started (UTC)", "Block", "Status", "Duration", "Error", "Id"],
            (
                [
                    r["started_at"][5:19].replace("T", " "),  # MM-DD hh:mm:ss (UTC)
                    r["block_name"],
                    _status(r),
                    _duration(r["duration_ms"]),
                    r["error_message"],
                    r["id"],
                ]
                for r in records
            ),
            optional=("Duration", "Error"),
            width=console.width,
        )
    )


@app.command("show")
def show(
    user: UserOption,
    execution_id: Annotated[
        str, typer.Argument(metavar="ID", help="The execution id.", show_default=False)
    ],
    json_output: JsonFlag = False,
) -> None:
    """One execution record: status, timings, redacted input, output summary, error."""

    async def body(pilot: Pilot) -> dict[str, Any]:
        found = await resolve_user(pilot, user)
        record = await pilot.executions.get(found.id, execution_id.strip())
        if record is None:
            raise ExecutionNotFoundError(
                f"No execution {execution_id[:100]!r} for user {user[:80]!r}"
            )
        return record.public()

    record = with_pilot(body)
    if wants_json(json_output):
        print_json(record)
        return
    labels = {
        "id": "Id",
        "block_name": "Block",
        "block_id": "Block id",
        "status": "Status",
        "is_dry_run": "Dry run",
        "session_id": "Session",
        "started_at": "Started",
        "finished_at": "Finished",
        "duration_ms": "Duration",
        "input": "Input (redacted)",
        "output_summary": "Output summary",
        "error_code": "Error code",
        "error_message": "Error",
        "credential_ids": "Credentials used",
    }
    values = dict(record)
    values["duration_ms"] = _duration(record["duration_ms"])
    stdout_console().print(
        table(
            "Execution",
            ["Field", "Value"],
            ([label, values.get(key)] for key, label in labels.items()),
            no_wrap=(),
        )
    )
