"""Serve an ASGI app (such as blockpilot's own) over real HTTP on a free port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ._http import (
    LOCALHOST,
)

# --------------------------------------------------------------------------------------
# ASGI apps over real HTTP
# --------------------------------------------------------------------------------------


@asynccontextmanager
async def serve_asgi(
    app: Any, *, host: str = LOCALHOST, timeout: float = 15.0, **options: Any
) -> AsyncIterator[str]:
    """Serve the ASGI *app* with uvicorn on a free port of *host* (IPv4); yields its URL.

    The server is a task in the running event loop, so the app may use objects bound to
    that loop (a Pilot); it is a plain task, not a task group, so it may be entered and
    left in different tasks (as pytest-asyncio does with fixtures).  It runs with the
    service's own settings (:func:`blockpilot.api.server.server_config`: lifespan on, our
    logging) plus *options*.  Start-up and shut-down each wait at most *timeout* seconds.
    """
    import uvicorn

    from blockpilot.api.server import server_config

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(server_config(app, host=host, port=port, **options))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(timeout):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started serving")
                await asyncio.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout)
        sock.close()
