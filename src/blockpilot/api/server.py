"""Run the HTTP API with uvicorn.

The ``blockpilot serve`` CLI command calls :func:`serve`; it is the only thing that command
needs from here.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from blockpilot.api.app import create_app
from blockpilot.api.header_timeout import DEFAULT_HEADER_TIMEOUT_SECONDS, header_deadline_protocol
from blockpilot.api.logs import configure_logging
from blockpilot.errors import ConfigurationError
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings


def server_config(
    app: FastAPI,
    *,
    host: str,
    port: int,
    header_timeout_seconds: float = DEFAULT_HEADER_TIMEOUT_SECONDS,
    **options: Any,
) -> uvicorn.Config:
    """uvicorn's configuration for *app*: our JSON logs and access lines, not uvicorn's, and
    a deadline for request heads (:mod:`blockpilot.api.header_timeout`)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=header_deadline_protocol(header_timeout_seconds),
        lifespan="on",  # a Pilot that cannot open (bad key, bad database URL) stops start-up
        log_config=None,
        access_log=False,  # RequestContextMiddleware writes the access lines
        server_header=False,
        timeout_graceful_shutdown=10,
        **options,
    )


def serve(host: str = "127.0.0.1", port: int = 8000, *, settings: Settings | None = None) -> None:
    """Serve the API until stopped; what ``blockpilot serve [--host] [--port]`` runs.

    Settings come from the environment (``BLOCKPILOT_*``) unless given. Logs go to stderr as
    JSON lines at ``settings.log_level``. The Pilot is opened before the port is bound, so a
    bad encryption key or database URL fails at once with its own error. SIGTERM and SIGINT
    stop the server gracefully (requests in flight may finish, within 10 seconds), the
    Pilot is closed (buffered execution results are written) and the function returns
    normally: a requested stop is a clean exit, not an error.

    Args:
        host: Interface to listen on; the default keeps the service local.
        port: TCP port (0 picks a free one; the log line "Uvicorn running on ..." says which).
        settings: Use these settings instead of the environment's.

    Raises:
        ConfigurationError: The settings are invalid, or the server cannot listen on
            *host*:*port* (the log line before says why).
        EncryptionKeyError: The key cannot decrypt the stored credentials.
    """
    settings = settings or Settings.load()
    if settings.public_url is None and port:
        # Setup links must point at this server, not at the default port.
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        shown = f"[{shown}]" if ":" in shown else shown
        settings = settings.model_copy(update={"public_url": f"http://{shown}:{port}"})
    configure_logging(settings.log_level)
    with _stop_signals() as stop:
        asyncio.run(_serve(settings, host, port, stop))


async def _serve(settings: Settings, host: str, port: int, stop: _StopRequest) -> None:
    pilot = await Pilot.open(settings)
    try:
        if stop.requested:  # stopped while the Pilot was opening
            return
        config = server_config(
            create_app(pilot),
            host=host,
            port=port,
            header_timeout_seconds=settings.header_timeout_seconds,
        )
        server = uvicorn.Server(config)
        try:
            await server.serve()
        except SystemExit:  # uvicorn's way of saying it could not start; it logged why
            raise ConfigurationError(
                f"The server could not start on {host}:{port}; see the log line above"
            ) from None
    finally:
        await pilot.close()  # writes buffered execution results, closes the database


class _StopRequest:
    requested = False


@contextmanager
def _stop_signals() -> Iterator[_StopRequest]:
    """Turn SIGTERM and SIGINT into a graceful stop with a clean exit.

    uvicorn handles both signals while it serves, and after its graceful shutdown raises
    the signal again for the handler that was installed before it. With Python's defaults
    that handler would end the process with SIGTERM (or KeyboardInterrupt); this one only
    notes the request. Outside uvicorn's serving (while the Pilot opens) it makes the
    server stop before it starts.
    """
    stop = _StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals are the main thread's; an embedding caller handles them
        return

    def note(signum: int, frame: FrameType | None) -> None:
        stop.requested = True

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
