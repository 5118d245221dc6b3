"""``blockpilot policy``: narrow the operator's policy for one user (docs/approvals.md)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from blockpilot.approvals.policy import PolicyRule, Selector, policy_document, rule_from_options
from blockpilot.cli.common import JsonFlag, UserOption, resolve_user, wants_json
from blockpilot.cli.output import print_json, print_note, stdout_console, table
from blockpilot.cli.runtime import with_pilot
from blockpilot.errors import NotFoundError
from blockpilot.pilot import Pilot

app = typer.Typer(no_args_is_help=True)


@app.command("set")
def set_rule(
    user: UserOption,
    decision: Annotated[
        str, typer.Option("--decision", help="allow, ask or deny.", show_default=False)
    ],
    effect: Annotated[
        str | None, typer.Option("--effect", help="read, write or destructive.")
    ] = None,
    block: Annotated[str | None, typer.Option("--block", help="A block's name or id.")] = None,
    source: Annotated[str | None, typer.Option("--source", help="A block source's name.")] = None,
    provider: Annotated[
        str | None, typer.Option("--provider", help="A credential provider (github, …).")
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", help="Only in this chat session.")
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", help="Only for calls made with this API key (its id or bp_ prefix)."),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Add (or replace) a rule for a user: e.g. ask before any write."""

    async def body(pilot: Pilot) -> dict[str, Any]:
        found = await resolve_user(pilot, user)
        if session is not None and await pilot.sessions.get(found.id, session) is None:
            raise NotFoundError(f"Session {session[:80]!r} of this user not found")
        api_key_id = None if key is None else await pilot.users.api_key_id(found.id, key)
        rule = rule_from_options(
            effect=effect,
            block=block,
            source=source,
            provider=provider,
            decision=decision.strip().lower(),
            user_id=found.id,
            session_id=session,
            api_key_id=api_key_id,
        )
        return (await pilot.policies.add(rule)).public()

    stored = with_pilot(body)
    if wants_json(json_output):
        print_json(stored)
        return
    print_note(f"Added {stored['rule']} (id {stored['id']})")


@app.command("dry-run")
def force_dry_run(
    user: UserOption,
    session: Annotated[str, typer.Option("--session", help="The chat session.")],
) -> None:
    """Force every run_block in a chat session to be a dry run (the model cannot undo it)."""

    async def body(pilot: Pilot) -> dict[str, Any]:
        found = await resolve_user(pilot, user)
        if await pilot.sessions.get(found.id, session) is None:
            raise NotFoundError(f"Session {session[:80]!r} of this user not found")
        rule = PolicyRule(Selector.MODE, "dry_run", None, user_id=found.id, session_id=session)
        return (await pilot.policies.add(rule)).public()

    print_json(with_pilot(body))


@app.command("remove")
def remove_rule(
    user: UserOption,
    rule_id: Annotated[str, typer.Argument(metavar="RULE_ID", show_default=False)],
) -> None:
    """Remove one of a user's rules."""

    async def body(pilot: Pilot) -> dict[str, Any]:
        found = await resolve_user(pilot, user)
        if not await pilot.policies.remove(found.id, rule_id.strip()):
            raise NotFoundError(f"Rule {rule_id[:40]!r} of this user not found")
        return {"removed": rule_id.strip()}

    print_json(with_pilot(body))


@app.command("show")
def show(user: UserOption, json_output: JsonFlag = False) -> None:
    """The operator's rules and a user's own, and how they combine."""

    async def body(pilot: Pilot) -> dict[str, Any]:
        found = await resolve_user(pilot, user)
        return policy_document(pilot.gate.operator_rules, await pilot.policies.for_user(found.id))

    document = with_pilot(body)
    if wants_json(json_output):
        print_json(document)
        return
    console = stdout_console()
    rows = [
        [
            who,
            r["decision"],
            f"{r['selector']}={r['value']}",
            r["session_id"] or "all",
            r["api_key_id"] or "all",
            r["id"],
        ]
        for who in ("operator", "user")
        for r in document[who]
    ]
    columns = ["From", "Decision", "Applies to", "Session", "API key", "Id"]
    console.print(table("Policy", columns, rows, width=console.width))
    console.print(document["note"])
