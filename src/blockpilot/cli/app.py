"""The ``blockpilot`` command: the root app, and the one place errors become exit codes.

Commands raise; :class:`BlockpilotGroup.main` (the edge) turns what they raise into one
``Error: ...`` line on stderr and the exit code of :mod:`blockpilot.cli.errors`. Only an
unexpected exception gets a traceback, and only in the log (``--verbose`` or the crash
log), never on the console by default.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from blockpilot.cli import (
    blocks,
    copilot,
    credentials,
    executions,
    keys,
    policy,
    reviews,
    serve,
    sources,
    tools,
    users,
    workspaces,
)
from blockpilot.cli.errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    exit_code_for_exception,
)
from blockpilot.cli.output import print_error
from blockpilot.cli.runtime import (
    configure_logging,
    logger,
    record_crash,
    remove_logging,
    reset_state,
    state,
    stderr_shows,
)
from blockpilot.errors import BlockpilotError

ExceptionTypes = tuple[type[BaseException], ...]


def _cli_exception_types() -> tuple[ExceptionTypes, ExceptionTypes]:
    """Click's usage-error and abort classes: Typer vendors Click since 0.2x, older use Click."""
    usage: list[type[BaseException]] = []
    aborts: list[type[BaseException]] = [typer.Abort]
    if hasattr(typer, "TyperException"):
        usage.append(typer.TyperException)
    try:
        import click.exceptions
    except ImportError:  # pragma: no cover - depends on what else is installed
        pass
    else:
        usage.append(click.exceptions.ClickException)
        aborts.append(click.exceptions.Abort)
    return tuple(usage), tuple(aborts)


_USAGE_ERRORS, _ABORTS = _cli_exception_types()
_INTERRUPTS: ExceptionTypes = (KeyboardInterrupt, *_ABORTS)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("blockpilot")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


class BlockpilotGroup(TyperGroup):
    """The root command group; its :meth:`main` is the CLI's only catch-all."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        reset_state()
        try:
            code = self._run(args, prog_name, complete_var, **extra)
        finally:
            remove_logging()
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(
        self,
        args: Sequence[str] | None,
        prog_name: str | None,
        complete_var: str | None,
        **extra: Any,
    ) -> int:
        try:
            result = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except BlockpilotError as exc:
            print_error(exc.message)
            return exit_code_for_exception(exc)
        except _USAGE_ERRORS as exc:
            return _usage_error(exc)
        except _INTERRUPTS:
            print_error("interrupted")
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            # The reader went away (`blockpilot ... | head`): nothing left to say to it.
            _silence_stdout()
            return EXIT_FAILURE
        except Exception as exc:  # noqa: BLE001 - the edge: anything else is a bug, logged
            return _unexpected(exc)
        # Typer returns the exit code of typer.Exit, else the command's return value (None).
        return result if isinstance(result, int) else EXIT_OK


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (tests) or already closed
        pass


def _usage_error(exc: BaseException) -> int:
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    if type(exc).__name__ == "NoArgsIsHelpError":
        if message.strip():  # plain (non-Rich) help comes back as the message
            sys.stderr.write(message.rstrip() + "\n")
        return EXIT_USAGE
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and ctx.command.get_help_option(ctx) is not None:
        message += f" (see '{ctx.command_path} {ctx.help_option_names[0]}')"
    print_error(message)
    code = getattr(exc, "exit_code", EXIT_USAGE)
    return code if isinstance(code, int) else EXIT_USAGE


def _unexpected(exc: Exception) -> int:
    path = record_crash(exc)
    if stderr_shows(logging.DEBUG):
        logger.error("unexpected failure", exc_info=exc)
        where = "the traceback above"
    elif path is not None:
        where = f"the log at {path} (or run again with --verbose)"
    else:
        where = "the log: run again with --verbose to print the traceback"
    print_error(f"unexpected failure ({type(exc).__name__}); see {where}")
    return EXIT_FAILURE


app = typer.Typer(
    cls=BlockpilotGroup,
    name="blockpilot",
    help=(
        "Find and run typed integration blocks for an AI copilot, with each user's own "
        "encrypted credentials. Configuration comes from BLOCKPILOT_* environment variables."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",  # docstring paragraphs reflow; no [markup] surprises
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["--help", "-h"]},
)


def _show_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"blockpilot {_version()}\n")
        raise typer.Exit()


@app.callback()
def root(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of tables (listing commands).")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log at DEBUG to stderr, with tracebacks.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Show the version and exit.", callback=_show_version, is_eager=True
        ),
    ] = False,
) -> None:
    """blockpilot: users, credentials, blocks, and running blocks by hand."""
    current = state()
    current.json = json_output
    current.verbose = verbose
    configure_logging(verbose)


app.add_typer(users.app, name="users", help="Create and list users.")
app.add_typer(keys.app, name="keys", help="API keys and the credential encryption keys.")
app.add_typer(
    credentials.app, name="credentials", help="A user's stored credentials (never shows secrets)."
)
app.add_typer(blocks.app, name="blocks", help="The block catalogue.")
app.add_typer(executions.app, name="executions", help="The audit trail of block runs.")
app.add_typer(policy.app, name="policy", help="Allow, ask or deny block runs per user.")
app.add_typer(reviews.app, name="reviews", help="Approve or reject calls waiting for a person.")
app.add_typer(sources.app, name="sources", help="Import API descriptions as blocks.")
app.add_typer(
    workspaces.app, name="workspaces", help="Move workspace files between backends; sweep orphans."
)
tools.register(app)
copilot.register(app)
serve.register(app)


def main() -> None:
    """Console-script entry point (``blockpilot``)."""
    app()
