"""What every command shares: logging, the Pilot's lifetime, the crash log."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from blockpilot.errors import ConfigurationError
from blockpilot.pilot import Pilot
from blockpilot.redaction import SECRETS, install_log_redaction
from blockpilot.settings import ENV_PREFIX, Settings

T = TypeVar("T")

LOG_LEVEL_ENV = f"{ENV_PREFIX}LOG_LEVEL"
# The service logs at INFO; a person at a terminal wants only what went wrong.
CLI_DEFAULT_LOG_LEVEL = "WARNING"
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

logger = logging.getLogger("blockpilot.cli")


@dataclass
class CliState:
    """Options of the root command, shared with every sub-command."""

    json: bool = False
    verbose: bool = False


_state = CliState()


def state() -> CliState:
    return _state


def reset_state() -> None:
    global _state
    _state = CliState()


# -- logging -------------------------------------------------------------------------------

_handler: logging.Handler | None = None
_previous_root_level: int | None = None


def log_level(verbose: bool) -> int:
    if verbose:
        return logging.DEBUG
    name = (os.environ.get(LOG_LEVEL_ENV) or CLI_DEFAULT_LOG_LEVEL).strip().upper()
    if name not in _LEVELS:
        raise ConfigurationError(
            f"{LOG_LEVEL_ENV} must be one of {', '.join(_LEVELS)}, got {name[:40]!r}"
        )
    return logging.getLevelName(name)  # type: ignore[no-any-return]


def _not_the_commands_own_result(record: logging.LogRecord) -> bool:
    # The runner warns about block failures for the service's logs; `run` and `tool` print
    # that outcome themselves, so by default it would be said twice on stderr.
    return not (record.name == "blockpilot.runner" and record.levelno < logging.ERROR)


def configure_logging(verbose: bool) -> None:
    """Log to stderr (never stdout: it carries the command's output)."""
    global _handler, _previous_root_level
    install_log_redaction()
    remove_logging()
    level = log_level(verbose)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)
    if not verbose and not os.environ.get(LOG_LEVEL_ENV):
        handler.addFilter(_not_the_commands_own_result)
    root = logging.getLogger()
    _previous_root_level = root.level
    root.setLevel(min(level, root.level))
    root.addHandler(handler)
    _handler = handler


def remove_logging() -> None:
    global _handler, _previous_root_level
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
        _handler.close()
        _handler = None
    if _previous_root_level is not None:
        root.setLevel(_previous_root_level)
        _previous_root_level = None


def stderr_shows(level: int) -> bool:
    return _handler is not None and _handler.level <= level


# -- the crash log -------------------------------------------------------------------------


def crash_log_path() -> Path | None:
    """``<BLOCKPILOT_HOME>/logs/cli.log``, if the configuration can be read at all."""
    try:
        return Settings.load().home / "logs" / "cli.log"
    except Exception:  # noqa: BLE001 - the crash log is best effort
        return None


def record_crash(exc: BaseException) -> Path | None:
    """Append the (secret-scrubbed) traceback to the crash log; return its path if written."""
    text = "".join(traceback.format_exception(exc))
    text = SECRETS.redactor.scrub_text(text)
    path = crash_log_path()
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as log:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            log.write(
                f"{stamp} unexpected failure in `blockpilot {' '.join(sys.argv[1:2])}`\n{text}\n"
            )
    except OSError:
        return None
    return path


# -- the Pilot -----------------------------------------------------------------------------


def with_pilot(body: Callable[[Pilot], Awaitable[T]]) -> T:
    """Open a :class:`Pilot` from the environment, run *body* with it, close it."""

    async def run() -> T:
        pilot = await Pilot.open()
        try:
            return await body(pilot)
        finally:
            await pilot.close()

    return asyncio.run(run())
