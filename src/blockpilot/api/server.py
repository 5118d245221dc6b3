"""Run the HTTP API with uvicorn.

The ``blockpilot serve`` CLI command calls :func:`serve`; it is the only thing that command
needs from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.routing import Route

from blockpilot.api.app import create_app
from blockpilot.api.header_timeout import DEFAULT_HEADER_TIMEOUT_SECONDS
from blockpilot.api.logs import configure_logging
from blockpilot.api.response_writes import server_protocol
from blockpilot.api.supervisor import Supervisor
from blockpilot.errors import ConfigurationError
from blockpilot.file_locks import FileLockManager
from blockpilot.limits import MachineRateLimiter
from blockpilot.mcp import MCPHttpApp
from blockpilot.mcp.worker_sessions import WorkerSessions, forwarded_requests_app
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.workers import Worker

logger = logging.getLogger(__name__)


def server_config(
    app: FastAPI,
    *,
    host: str,
    port: int,
    header_timeout_seconds: float = DEFAULT_HEADER_TIMEOUT_SECONDS,
    **options: Any,
) -> uvicorn.Config:
    """uvicorn's configuration for *app*: our JSON logs and access lines, not uvicorn's, and
    a deadline for request heads (:mod:`blockpilot.api.header_timeout`), a response's head and
    body in one write (:mod:`blockpilot.api.response_writes`)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=server_protocol(header_timeout_seconds),
        lifespan="on",  # a Pilot that cannot open (bad key, bad database URL) stops start-up
        log_config=None,
        access_log=False,  # RequestContextMiddleware writes the access lines
        server_header=False,
        timeout_graceful_shutdown=10,
        **options,
    )


def default_workers() -> int:
    """The cores this process may run on: ``blockpilot serve``'s default number of workers."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    settings: Settings | None = None,
    workers: int | None = None,
) -> None:
    """Serve the API until stopped; what ``blockpilot serve [--host] [--port] [--workers]`` runs.

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
        workers: Server processes sharing the port (Linux and macOS: forked; see
            :func:`_serve_workers` and docs/deployment.md#workers); None: one per core
            (:func:`default_workers`), 1: this process only. Called from another thread
            than the main one, this process serves alone.

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
    workers = default_workers() if workers is None else workers
    # The workers' parent needs the signals, which only the main thread may handle.
    if (
        workers > 1
        and hasattr(os, "fork")
        and threading.current_thread() is threading.main_thread()
    ):
        _serve_workers(settings, host, port, workers)
        return
    with _stop_signals() as stop:
        asyncio.run(_serve(settings, host, port, stop))


def _serve_workers(settings: Settings, host: str, port: int, workers: int) -> None:
    """Serve with *workers* forked processes accepting on one listening socket.

    The Pilot is opened once first (migrations, the key check), so a bad key or database URL
    fails once, with its error, and the workers do not race to migrate. Then the socket is
    bound and this process becomes their :class:`~blockpilot.api.supervisor.Supervisor`: it
    replaces a worker that dies, a signal to it stops them all gracefully, and the workers die
    with it even if it is killed (``PR_SET_PDEATHSIG`` on Linux). Each worker has its own
    Pilot and caches; rate limits, locks and MCP sessions are shared by the workers
    (docs/deployment.md#workers).
    """
    asyncio.run(_check_open(settings))
    sock = _listen(host, port)
    try:
        Supervisor(workers, lambda: _serve_worker(settings, host, port, sock)).run()
    finally:
        sock.close()


def _serve_worker(settings: Settings, host: str, port: int, sock: socket.socket) -> int:
    """One forked worker: serve on the shared socket until stopped; its exit code."""
    with _stop_signals() as stop:
        asyncio.run(_serve(settings, host, port, stop, sock=sock, shared=True))
    return 0


async def _check_open(settings: Settings) -> None:
    pilot = await Pilot.open(settings)
    await pilot.close()


def _listen(host: str, port: int) -> socket.socket:
    config = uvicorn.Config(app="unused:app", host=host, port=port, log_config=None)  # binds only
    try:
        sock = config.bind_socket()
    except SystemExit:  # uvicorn's way of saying it could not bind; it logged why
        raise ConfigurationError(
            f"The server could not start on {host}:{port}; see the log line above"
        ) from None
    sock.set_inheritable(True)
    return sock


async def _serve(
    settings: Settings,
    host: str,
    port: int,
    stop: _StopRequest,
    *,
    sock: socket.socket | None = None,
    shared: bool = False,
) -> None:
    if shared and not settings.redis_url:
        # Workers on one machine without Redis: locks (one OAuth refresh at a time) are
        # files in the shared home, so they exclude every worker.
        locks = FileLockManager(settings.home / "locks")
        pilot = await Pilot.open(settings, locks=locks)
    else:
        pilot = await Pilot.open(settings)
    async with contextlib.AsyncExitStack() as cleanup:
        cleanup.push_async_callback(pilot.close)  # writes buffered results, closes the database
        if stop.requested:  # stopped while the Pilot was opening
            return
        limiter = None
        worker = Worker.start(settings.home) if shared else None
        if worker is not None:
            cleanup.callback(worker.close)
            if not settings.redis_url:
                # Without Redis the workers share their limits through a file of the home.
                limiter = MachineRateLimiter.from_settings(settings, worker)
                cleanup.callback(limiter.close)
        app = create_app(pilot, limiter=limiter)
        config = server_config(
            app, host=host, port=port, header_timeout_seconds=settings.header_timeout_seconds
        )
        server = _Server(config, stop)
        if worker is not None:
            await cleanup.enter_async_context(_worker_socket(worker, _mcp_app(app)))
        # What start-up allocated (modules, the catalogue, the app) lives as long as the
        # process: keep it out of the collector's full passes (docs/performance.md).
        gc.freeze()
        try:
            await server.serve(sockets=None if sock is None else [sock])
        except SystemExit:  # uvicorn's way of saying it could not start; it logged why
            raise ConfigurationError(
                f"The server could not start on {host}:{port}; see the log line above"
            ) from None


def _mcp_app(app: FastAPI) -> MCPHttpApp:
    """The MCP endpoint ``create_app`` mounted at ``/mcp``."""
    for route in app.router.routes:
        if isinstance(route, Route) and isinstance(route.endpoint, MCPHttpApp):
            return route.endpoint
    raise LookupError("the app has no MCP endpoint")


@contextlib.asynccontextmanager
async def _worker_socket(worker: Worker, mcp_app: MCPHttpApp) -> AsyncIterator[None]:
    """Serve MCP requests that the other workers forward, on this worker's Unix socket,
    and let *mcp_app* forward requests for their sessions to them
    (:mod:`blockpilot.mcp.worker_sessions`)."""
    sessions = WorkerSessions(worker)
    mcp_app.share_sessions(sessions)
    config = uvicorn.Config(
        forwarded_requests_app(mcp_app),
        lifespan="off",  # the app's lifespan is the main server's
        log_config=None,
        access_log=False,  # the worker that took the request writes its access line
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=10,
    )
    config.load()
    internal = uvicorn.Server(config)
    internal.lifespan = config.lifespan_class(config)
    sock = worker.listen()
    await internal.startup(sockets=[sock])
    logger.info("server worker ready", extra={"worker": worker.id})
    try:
        yield
    finally:
        mcp_app.share_sessions(None)
        await sessions.aclose()
        await internal.shutdown(sockets=[sock])


class _Server(uvicorn.Server):
    """uvicorn's server that honours a stop signal which came before uvicorn took the signals
    over."""

    def __init__(self, config: uvicorn.Config, stop: _StopRequest) -> None:
        super().__init__(config)
        self._stop = stop

    async def main_loop(self) -> None:
        # Between the Pilot opening and uvicorn installing its handlers, a SIGTERM or SIGINT
        # only set the flag (a slow worker start-up can take seconds on a busy machine).
        if self._stop.requested:
            self.handle_exit(signal.SIGTERM, None)
        await super().main_loop()


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
