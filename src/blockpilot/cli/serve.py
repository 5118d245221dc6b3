"""``blockpilot serve``: the HTTP API (with MCP at ``/mcp`` and the setup page) under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from blockpilot.cli.runtime import state
from blockpilot.settings import Settings


def serve(
    host: Annotated[
        str, typer.Option("--host", help="Interface to listen on (0.0.0.0 for every interface).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="TCP port (0 picks a free one).")
    ] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=0,
            envvar="BLOCKPILOT_WORKERS",
            show_default="one per core",
            help="Server processes sharing the port (0 or unset: one per core the process "
            "may run on; 1: one process). Above 1 a parent process replaces a worker that "
            "dies; MCP sessions and rate limits are shared by the workers: see "
            "docs/deployment.md#workers.",
        ),
    ] = None,
) -> None:
    """Run the HTTP API until SIGTERM or Ctrl-C, then shut down gracefully (exit code 0).

    Logs are JSON lines on stderr at BLOCKPILOT_LOG_LEVEL (default INFO; DEBUG with
    --verbose). OpenAPI is at /docs and /openapi.json; probes at /healthz and /readyz.
    """
    from blockpilot.api.server import default_workers
    from blockpilot.api.server import serve as run_server  # FastAPI and uvicorn only here

    settings = Settings.load(log_level="DEBUG") if state().verbose else Settings.load()
    run_server(host, port, settings=settings, workers=workers or default_workers())


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
