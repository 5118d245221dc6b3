"""A download that overlaps a replacement (or a delete) of the same file gets the whole version
it started on, on every blob backend: over real sockets, a slow reader stops after its first
bytes, another request replaces the file, then the reader reads on (docs/workspaces.md)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket

import httpx
import pytest

from blockpilot.api.app import create_app
from blockpilot.testing import serve_asgi
from tests.workspace_backends import live_holds, stored_blobs

pytestmark = pytest.mark.workspace_backends

MIB = 1024 * 1024
FILE = "/api/v1/workspace/files/reports/big.bin"
# Far more than can be in flight when the reader stops: the server's send buffer (at most
# 4 MiB here), the reader's receive buffer (kept at 64 KiB below) and one 1 MiB piece. So
# the server must read the old blob *after* the replacement to finish the download.
SIZE = 16 * MIB


def _slow_reader(base_url: str, key: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)]
    )
    return httpx.AsyncClient(
        transport=transport, base_url=base_url, headers={"Authorization": f"Bearer {key}"}
    )


@pytest.mark.parametrize("change", ["replace", "delete"])
async def test_a_download_overlapping_a_change_gets_the_whole_old_version(
    make_pilot, workspace_url: str, change: str
) -> None:
    pilot = await make_pilot(workspace_url=workspace_url, max_file_bytes=64 * MIB)
    _, alice_key = await pilot.users.create("alice")
    _, bob_key = await pilot.users.create("bob")
    old, new = os.urandom(SIZE), os.urandom(SIZE // 2 + 3)
    auth = {"Authorization": f"Bearer {alice_key}"}
    async with (
        serve_asgi(create_app(pilot)) as base_url,
        httpx.AsyncClient(base_url=base_url, headers=auth, timeout=60) as writer,
    ):
        assert (await writer.put(FILE, content=old)).status_code == 201
        async with (
            _slow_reader(base_url, alice_key) as reader,
            reader.stream("GET", FILE, timeout=60) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-length"] == str(SIZE)
            pieces = response.aiter_raw()
            body = bytearray(await anext(pieces))
            assert 0 < len(body) < SIZE  # the reader is mid-way

            # Meanwhile another request changes the file, completely.
            if change == "replace":
                done = await writer.put(FILE, content=new)
                assert done.status_code == 200, done.text
                assert (await writer.get(FILE)).content == new
            else:
                assert (await writer.delete(FILE)).status_code == 204
                assert (await writer.get(FILE)).status_code == 404

            async for piece in pieces:
                body += piece
        bob = {"Authorization": f"Bearer {bob_key}"}
        assert (await writer.get(FILE, headers=bob)).status_code == 404
    # All of the version the download started on: never short, never mixed.
    assert len(body) == SIZE and hashlib.sha256(body).digest() == hashlib.sha256(old).digest()
    # The old version goes when its last reader lets go (as the client hangs up, so it is
    # looked for until then); only the new one is stored.
    left = 1 if change == "replace" else 0
    for _ in range(500):
        if await stored_blobs(pilot) == left:
            break
        await asyncio.sleep(0.02)
    assert await stored_blobs(pilot) == left
    assert await live_holds(pilot) == 0
