"""Workspace files across two ``blockpilot serve`` processes (docs/deployment.md).

Two real server processes, each with its own ``BLOCKPILOT_HOME`` (nothing shared on disk), on
one PostgreSQL database, with workspace files in the database or in S3 (moto's server, on a
local port): a file written through one server's HTTP API — uploaded, or saved by a block —
is read, replaced and deleted through the other's; another user reaches none of it; no
server writes a byte of it to its own disk, nor the S3 secret to its log.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from blockpilot.blocks.library.workspace_files import (
    ReadWorkspaceFileBlock,
    WriteWorkspaceFileBlock,
)
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from tests.scale.scale_services import free_port
from tests.workspace_backends import S3_SECRET_CANARY

pytestmark = [pytest.mark.workspace_backends("database", "s3"), pytest.mark.slow]

MIB = 1024 * 1024
FILES = "/api/v1/workspace/files"


@dataclass
class Server:
    home: Path
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def _start(settings: Settings, home: Path) -> Server:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPILOT_")}
    env.update(
        BLOCKPILOT_HOME=str(home),
        BLOCKPILOT_DATABASE_URL=settings.effective_database_url,
        BLOCKPILOT_WORKSPACE_URL=settings.effective_workspace_url,
        BLOCKPILOT_ENCRYPTION_KEYS=",".join(k.get_secret_value() for k in settings.encryption_keys),
        BLOCKPILOT_LOG_LEVEL="DEBUG",  # so a leak of the S3 secret into a log would show
    )
    home.mkdir(parents=True)
    port = free_port()
    log = home.parent / f"{home.name}.log"
    script = Path(sys.executable).with_name("blockpilot")
    command = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from blockpilot.cli.app import main; main()"]
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Server(home, f"http://127.0.0.1:{port}", process, log)


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            tail = server.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"server at {server.url} did not start:\n{tail}")
        time.sleep(0.1)


def _stop(servers: list[Server]) -> None:
    for server in servers:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
    for server in servers:
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture
async def two_servers(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[tuple[Settings, Server, Server]]:
    settings = settings_factory()
    # The first start migrates the database; the test's own Pilot does it before both.
    await (await Pilot.open(settings)).close()
    servers = [_start(settings, tmp_path / "home-a"), _start(settings, tmp_path / "home-b")]
    try:
        for server in servers:
            await asyncio.to_thread(_wait_ready, server)
        yield settings, servers[0], servers[1]
    finally:
        await asyncio.to_thread(_stop, servers)


async def test_a_file_written_through_one_server_is_read_through_the_other(
    two_servers: tuple[Settings, Server, Server],
) -> None:
    settings, a, b = two_servers
    pilot = await Pilot.open(settings)
    try:
        _, alice_key = await pilot.users.create("alice")
        _, bob_key = await pilot.users.create("bob")
    finally:
        await pilot.close()
    data = os.urandom(3 * MIB + 17)
    alice = {"Authorization": f"Bearer {alice_key}"}
    async with httpx.AsyncClient(headers=alice, timeout=60) as client:
        put = await client.put(f"{a.url}{FILES}/reports/out.bin", content=data)
        assert put.status_code == 201, put.text
        got = await client.get(f"{b.url}{FILES}/reports/out.bin")
        assert got.status_code == 200 and got.content == data
        assert got.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        listed = (await client.get(f"{b.url}{FILES}", params={"prefix": "reports"})).json()
        assert [f["id"] for f in listed["files"]] == [put.json()["id"]]

        # Replaced through the second server, read back through the first.
        assert (
            await client.put(f"{b.url}{FILES}/reports/out.bin", content=b"v2")
        ).status_code == 200
        assert (await client.get(f"{a.url}{FILES}/reports/out.bin")).content == b"v2"

        # A block run on one server saves a file; a block run on the other reads it.
        wrote = await client.post(
            f"{a.url}/api/v1/tools/run_block",
            json={
                "block_id": WriteWorkspaceFileBlock.id,
                "input_data": {"path": "notes/plan.md", "content": "# written on a"},
            },
        )
        assert wrote.status_code == 200 and wrote.json()["type"] == "block_output", wrote.text
        read = await client.post(
            f"{b.url}/api/v1/tools/run_block",
            json={"block_id": ReadWorkspaceFileBlock.id, "input_data": {"path": "notes/plan.md"}},
        )
        assert read.json()["outputs"] == {"content": ["# written on a"]}, read.text

        # Another user reaches none of it, on either server.
        bob = {"Authorization": f"Bearer {bob_key}"}
        for server in (a, b):
            missing = await client.get(f"{server.url}{FILES}/reports/out.bin", headers=bob)
            assert missing.status_code == 404
            assert (await client.get(f"{server.url}{FILES}", headers=bob)).json()["files"] == []

        # Deleted through one server: gone on the other.
        assert (await client.delete(f"{a.url}{FILES}/reports/out.bin")).status_code == 204
        assert (await client.get(f"{b.url}{FILES}/reports/out.bin")).status_code == 404

    for server in (a, b):
        assert not (server.home / "workspaces").exists()  # nothing of the files on disk
        assert S3_SECRET_CANARY not in server.log.read_text(errors="replace")
