"""The API served by uvicorn over a real socket."""

from __future__ import annotations

import asyncio

import httpx

from blockpilot.pilot import Pilot


async def test_ready_and_find_block_over_real_http(
    base_url: str, pilot: Pilot, alice_key: str
) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert "server" not in ready.headers

        response = await client.post(
            "/api/v1/tools/find_block",
            json={"query": "calculator"},
            headers={"Authorization": f"Bearer {alice_key}"},
        )
        assert response.status_code == 200
        body = response.json()
        assert body["type"] == "block_list" and body["count"] >= 1
        assert response.headers["x-session-id"] == body["session_id"]
        assert len(response.headers["x-request-id"]) == 32


async def test_literal_dot_dot_over_the_wire_is_400(base_url: str, alice_key: str) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"PUT /api/v1/workspace/files/../../escape.txt HTTP/1.1\r\n"
        b"Host: x\r\nAuthorization: Bearer " + alice_key.encode() + b"\r\n"
        b"Content-Length: 1\r\nConnection: close\r\n\r\nx"
    )
    await writer.drain()
    status_line = await reader.readline()
    rest = await reader.read()
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 400"), status_line
    assert b'"invalid_path"' in rest
