"""CPU per request of the HTTP app in process: run_block against the bare endpoint, no sockets.

Through sockets (``bench.cpu_per_request``) a request's CPU includes the server's parsing,
the socket calls and the client's side of loopback, and moves with whatever else the
machine runs. Here ``bench.server``'s two apps (blockpilot's, as ``blockpilot serve`` builds
it, with its JSON access lines going to /dev/null, and the bare FastAPI endpoint running the
same block) are called through ASGI by 16 tasks in one event loop, in alternating batches;
a batch's CPU per request is ``time.process_time`` over its requests, and each app's
minimum over the batches is reported (the least disturbed batch). run_block is called with
a session and without one (``run_block_sessionless``: each call makes a new session). Good
for comparing two ``src/`` trees run after one another: ``PYTHONPATH=<tree>/src:.``.

``python -m bench.http_inprocess [--secrets N] [--batches 6] [--requests 1600]
[--profile]``; ``--profile`` only drives run_block (for ``py-spy record -- python -m ...``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench.blocks import BenchEchoBlock, bench_registry
from bench.common import bench_settings, temporary_home
from bench.server import DEFAULT_SECRETS, bare_app, credential_secrets
from blockpilot.api.app import create_app
from blockpilot.api.logs import configure_logging
from blockpilot.pilot import Pilot
from blockpilot.redaction import SECRETS

TASKS = 16

_Target = tuple[Any, str, list[tuple[bytes, bytes]], bytes]


@asynccontextmanager
async def _started(app: Any) -> AsyncIterator[None]:
    """*app* between its lifespan's start-up and shut-down, as a server runs it."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await outbox.get()
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


async def _request(target: _Target) -> None:
    app, path, headers, body = target
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    if statuses != [200]:
        raise RuntimeError(f"{path} answered {statuses}")


async def _batch(target: _Target, requests: int) -> float:
    """CPU seconds per request over *requests* requests from TASKS concurrent tasks."""

    async def client() -> None:
        for _ in range(requests // TASKS):
            await _request(target)

    started = time.process_time()
    await asyncio.gather(*(client() for _ in range(TASKS)))
    return (time.process_time() - started) / (requests // TASKS * TASKS)


async def measure(*, secrets: int, batches: int, requests: int, profile: bool) -> dict[str, Any]:
    with temporary_home() as home:
        settings = bench_settings(home, log_level="INFO")
        shown, sys.stderr = sys.stderr, open(os.devnull, "w")  # noqa: SIM115
        try:  # the access lines are written, as a server writes them, to /dev/null
            configure_logging(settings.log_level)
        finally:
            sys.stderr = shown
        registry = bench_registry()
        pilot = await Pilot.open(settings, registry=registry)
        try:
            for values in credential_secrets(secrets):
                SECRETS.add(values)
            user, api_key = await pilot.users.create("bench")
            session = (await pilot.session_for(user.id, None)).session_id
            block = registry.get(BenchEchoBlock.id)
            assert block is not None
            app, bare = create_app(pilot), bare_app(block)
            body = json.dumps({"block_id": BenchEchoBlock.id, "input_data": {"text": "hi"}})
            bare_body = b'{"text": "hi"}'
            run_block_headers = [
                (b"host", b"127.0.0.1:8000"),
                (b"authorization", f"Bearer {api_key}".encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            run_block = (app, "/api/v1/tools/run_block")
            targets: dict[str, _Target] = {
                "run_block": (
                    *run_block,
                    [*run_block_headers, (b"x-session-id", session.encode())],
                    body.encode(),
                ),
                "run_block_sessionless": (*run_block, run_block_headers, body.encode()),
                "bare": (
                    bare,
                    "/run",
                    [
                        (b"host", b"127.0.0.1:8000"),
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(bare_body)).encode()),
                    ],
                    bare_body,
                ),
            }
            async with _started(app), _started(bare):
                if profile:
                    for _ in range(batches):
                        await _batch(targets["run_block"], requests)
                    return {}
                for target in targets.values():  # warm-up
                    await _batch(target, 800)
                cpu: dict[str, list[float]] = {name: [] for name in targets}
                for i in range(batches):
                    for name in targets if i % 2 == 0 else reversed(list(targets)):
                        cpu[name].append(await _batch(targets[name], requests) * 1e6)
        finally:
            await pilot.close()
    best = {name: min(values) for name, values in cpu.items()}
    return {
        "secrets": secrets,
        "cpu_us_per_request_min": best,
        "cpu_us_per_request": cpu,
        "bare_cpu_over_ours": best["bare"] / best["run_block"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--secrets", type=int, default=DEFAULT_SECRETS)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--requests", type=int, default=1600, help="per batch")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    load = float(Path("/proc/loadavg").read_text().split()[0])
    measuring = measure(
        secrets=args.secrets, batches=args.batches, requests=args.requests, profile=args.profile
    )
    result = asyncio.run(measuring)
    result["load_average_1m"] = load
    result["pythonpath"] = os.environ.get("PYTHONPATH", "")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
