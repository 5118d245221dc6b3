"""The bench's server process: blockpilot's service and its baselines in ONE process.

``python -m bench.server --home DIR --ports API,BARE,MCP [--secrets N]`` opens a Pilot on a
fresh SQLite file (bench blocks only, rate limits off), creates a user, an API key and a chat
session, registers N credentials' secrets in the process-wide secret registry (as a server
that has decrypted them holds them: every log line is scrubbed of each), and serves, on one
event loop:

* ``API``: the blockpilot service, ``create_app(pilot)`` exactly as ``blockpilot serve``
  builds it (middleware, JSON access log lines at INFO to stderr, auth per request, MCP at
  ``/mcp``);
* ``BARE``: a bare FastAPI app whose ``POST /run`` validates ``{"text": ...}`` and runs the
  *same block object* (``block.run_collect``): the floor for an HTTP endpoint;
* ``MCP``: a plain MCP SDK ``MCPServer`` with one ``echo`` tool over streamable HTTP at
  ``/mcp`` (no auth, no persistence).

When all three listen it prints one JSON line (ports, API key, session id, pid) to stdout.
SIGTERM or SIGINT stop it (the Pilot is closed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import random
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from bench.blocks import BenchEchoBlock, EchoArgs, bench_registry, echo
from bench.common import bench_settings
from blockpilot.api.app import create_app
from blockpilot.api.logs import configure_logging
from blockpilot.api.server import server_config
from blockpilot.pilot import Pilot
from blockpilot.redaction import SECRETS, secret_parts

DEFAULT_SECRETS = 50
"""Secrets a small deployment's server holds: ~20 users with one or two credentials each, a
header credential counting twice ("Bearer X" and X). The registry holds every decrypted
credential's values, so each access line is scrubbed of all of them."""

_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def credential_secrets(count: int, seed: int = 7) -> list[list[str]]:
    """*count* secret values in credentials' shapes, grouped as credentials carry them: API
    keys of common providers, bearer headers (the header and its token), passwords with
    characters that have escaped forms (quotes, '/', non-ASCII)."""
    rng = random.Random(seed)

    def token(n: int) -> str:
        return "".join(rng.choice(_ALPHABET) for _ in range(n))

    shapes = (
        lambda: [f"sk-proj-{token(48)}"],
        lambda: [f"ghp_{token(36)}"],
        lambda: [header := f"Bearer {token(40)}", *secret_parts(header)],
        lambda: [f'{token(10)}/"{token(4)}\u00e9{token(6)}'],
    )
    groups: list[list[str]] = []
    made = 0
    while made < count:
        values = shapes[len(groups) % len(shapes)]()[: count - made]
        groups.append(values)
        made += len(values)
    return groups


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling (three servers share one process)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bare_app(block: Any) -> FastAPI:
    app = FastAPI(title="bare", openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/run")
    async def run(body: EchoArgs) -> dict[str, Any]:
        return {"outputs": await block.run_collect(body.model_dump())}

    return app


def plain_mcp_app() -> Any:
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("plain", warn_on_duplicate_tools=False)
    server.tool(name="echo", description="Echo a text back")(echo)
    return server.streamable_http_app(host="127.0.0.1")


async def serve(home: Path, ports: list[int], log_file: Path | None, secrets: int) -> None:
    settings = bench_settings(home, log_level="INFO")
    if log_file is not None:  # the service's own JSON log lines, as in production, to a file
        sys.stderr = open(log_file, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
    configure_logging(settings.log_level)
    registry = bench_registry()
    pilot = await Pilot.open(settings, registry=registry)
    for values in credential_secrets(secrets):  # one credential at a time, as runs decrypt them
        SECRETS.add(values)
    try:
        user, api_key = await pilot.users.create("bench")
        session = (await pilot.session_for(user.id, None)).session_id
        block = registry.get(BenchEchoBlock.id)
        assert block is not None
        api = _Server(server_config(create_app(pilot), host="127.0.0.1", port=ports[0]))
        # The baselines parse HTTP with h11, as blockpilot's server always does (its
        # head-deadline protocol is h11's); uvicorn's "auto" would pick httptools for them
        # alone once it is installed. The event loop is the process's, shared by all three.
        quiet = {
            "log_config": None,
            "access_log": False,
            "lifespan": "on",
            "server_header": False,
            "http": "h11",
        }
        bare = _Server(uvicorn.Config(bare_app(block), host="127.0.0.1", port=ports[1], **quiet))
        mcp = _Server(uvicorn.Config(plain_mcp_app(), host="127.0.0.1", port=ports[2], **quiet))
        servers = [api, bare, mcp]

        def stop() -> None:
            for server in servers:
                server.should_exit = True

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        tasks = [asyncio.create_task(server.serve()) for server in servers]
        while not all(server.started for server in servers):
            if any(task.done() for task in tasks):
                stop()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise SystemExit("a bench server could not start")
            await asyncio.sleep(0.02)
        ready = {
            "ready": True,
            "api_port": ports[0],
            "bare_port": ports[1],
            "mcp_port": ports[2],
            "api_key": api_key,
            "session_id": session,
            "user_id": user.id,
            "block_id": BenchEchoBlock.id,
        }
        # As `blockpilot serve` does after start-up (api/server.py): what start-up allocated
        # stays out of the collector's full passes, which otherwise stall the loop ~0.1 s
        # each under load on this heap (docs/performance.md).
        gc.freeze()
        print(json.dumps(ready), flush=True)
        await asyncio.gather(*tasks)
    finally:
        await pilot.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--ports", required=True, help="API,BARE,MCP")
    parser.add_argument("--log-file", type=Path)
    parser.add_argument(
        "--secrets", type=int, default=DEFAULT_SECRETS, help="secret values registered"
    )
    parser.add_argument("--profile", type=Path, help="write a pyinstrument report here at exit")
    args = parser.parse_args()
    ports = [int(p) for p in args.ports.split(",")]
    if args.profile is None:
        asyncio.run(serve(args.home, ports, args.log_file, args.secrets))
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002, async_mode="disabled")
    profiler.start()
    try:
        asyncio.run(serve(args.home, ports, args.log_file, args.secrets))
    finally:
        profiler.stop()
        args.profile.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        session = profiler.last_session
        if session is not None:
            session.save(str(args.profile.with_suffix(".pyisession")))


if __name__ == "__main__":
    main()
