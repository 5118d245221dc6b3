"""Run the HTTP API with uvicorn.

The ``blockpilot serve`` CLI command calls :func:`serve`; it is the only thing that command
needs from here.
"""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI

from blockpilot.api.app import create_app
from blockpilot.api.logs import configure_logging
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings


def server_config(app: FastAPI, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for *app*: our JSON logs and access lines, not uvicorn's."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",  # a Pilot that cannot open (bad key, bad database URL) stops start-up
        log_config=None,
        access_log=False,  # RequestContextMiddleware writes the access lines
        server_header=False,
        timeout_graceful_shutdown=10,
        **options,
    )


def serve(host: str = "127.0.0.1", port: int = 8000, *, settings: Settings | None = None) -> None:
    """Serve the API until interrupted; what ``blockpilot serve [--host] [--port]`` runs.

    Settings come from the environment (``BLOCKPILOT_*``) unless given. Logs go to stderr as
    JSON lines at ``settings.log_level``.

    Args:
        host: Interface to listen on; the default keeps the service local.
        port: TCP port.
        settings: Use these settings instead of the environment's.

    Raises:
        ConfigurationError: The settings are invalid.
    """
    settings = settings or Settings.load()
    configure_logging(settings.log_level)

    async def open_pilot() -> Pilot:
        return await Pilot.open(settings)

    uvicorn.Server(server_config(create_app(pilot_factory=open_pilot), host=host, port=port)).run()
