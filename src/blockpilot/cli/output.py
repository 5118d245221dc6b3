"""Where the CLI writes: machine output (JSON) on stdout, people's output via Rich.

Consoles are created per call, never at import, so they follow whatever ``sys.stdout`` /
``sys.stderr`` are at that moment (test runners swap them). Text that comes from data
(block descriptions, error messages) is always passed as :class:`rich.text.Text`, never
as markup, so a ``[red]`` in a description is shown, not interpreted.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

# Piped output is read by programs or saved: do not crop it to an 80-column guess.
_PIPE_WIDTH = 200


def stdout_console() -> Console:
    console = Console(file=sys.stdout, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(file=sys.stdout, highlight=False, width=_PIPE_WIDTH)
    return console


def stderr_console() -> Console:
    return Console(file=sys.stderr, highlight=False)


def print_json(value: Any) -> None:
    """Exactly one JSON document on stdout (no Rich: no wrapping, no colour codes)."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def print_error(message: str) -> None:
    """``Error: <message>`` as one line on stderr, red on a terminal."""
    stderr_console().print(Text(f"Error: {one_line(message)}", style="bold red"), soft_wrap=True)


def print_warning(message: str) -> None:
    stderr_console().print(Text(f"Warning: {one_line(message)}", style="yellow"), soft_wrap=True)


def print_note(message: str) -> None:
    """A hint for people on stderr, so stdout stays machine-readable."""
    stderr_console().print(Text(one_line(message), style="dim"), soft_wrap=True)


@contextmanager
def spinner(message: str) -> Iterator[None]:
    """A spinner on stderr while something runs (only drawn on a terminal)."""
    console = stderr_console()
    if not console.is_terminal:
        yield
        return
    with console.status(Text(message)):
        yield


def cell(value: Any) -> Text:
    """A table cell from any value, shown literally."""
    if value is None:
        return Text("")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, datetime):
        return Text(value.isoformat(timespec="seconds"))
    if isinstance(value, list | tuple | set | frozenset):
        return Text(", ".join(str(v) for v in value))
    if isinstance(value, dict):
        return Text(json.dumps(value, ensure_ascii=False, default=str))
    return Text(str(value))


_NARROW_MAX = 24


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    no_wrap: Iterable[str] = ("id",),
    optional: Iterable[str] = (),
    width: int | None = None,
    wide: int = 120,
) -> Table:
    """A Rich table of literal cells.

    Columns named in *no_wrap* (ids: people copy them) keep their full width; columns
    named in *optional* are left out when the console is narrower than *wide*.
    """
    keep = {n.lower() for n in no_wrap}
    narrow = width is not None and width < wide
    drop = {n.lower() for n in optional} if narrow else set()
    shown = [i for i, name in enumerate(columns) if name.lower() not in drop]
    result = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        show_edge=False,
    )
    for i in shown:
        name = columns[i]
        if name.lower() in keep:
            # Ids are copied and pasted: keep them whole whenever there is room.
            result.add_column(name, no_wrap=True, style="cyan")
        elif name.lower() == "description":
            result.add_column(name, overflow="fold", ratio=1)
        else:
            # On a narrow console long names fold instead of pushing the ids off the edge.
            result.add_column(name, overflow="fold", max_width=_NARROW_MAX if narrow else None)
    for row in rows:
        result.add_row(*(cell(row[i]) for i in shown))
    return result


def value_text(value: Any) -> Text:
    """An output value as people read it: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return Text(value)
    return Text(json.dumps(value, indent=2, ensure_ascii=False, default=str))
