"""Workspace files over HTTP: round trips, isolation, traversal and size limits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.storage.users import User
from tests.api.api_helpers import assert_error, raw_asgi_request
from tests.workspace_backends import stored_blobs

FILES = "/api/v1/workspace/files"

pytestmark = pytest.mark.workspace_backends


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    """This module runs with a 1000-byte file limit."""
    return settings_factory(http_allowed_hosts=("127.0.0.1",), max_file_bytes=1000)


async def stored_paths(pilot: Pilot, user: User) -> list[str]:
    workspace = await pilot.workspaces.get_or_create_workspace(user.id)
    return [f.path for f in await pilot.workspaces.for_workspace(workspace).list()]


async def test_put_get_list_delete_round_trip(as_alice: httpx.AsyncClient) -> None:
    created = await as_alice.put(
        f"{FILES}/notes/today.txt", content=b"hello", headers={"Content-Type": "text/plain"}
    )
    assert created.status_code == 201
    info = created.json()
    assert info["path"] == "/notes/today.txt" and info["size_bytes"] == 5
    assert info["uri"] == f"workspace://{info['id']}"

    replaced = await as_alice.put(f"{FILES}/notes/today.txt", content=b"hello again")
    assert replaced.status_code == 200
    assert replaced.json()["id"] == info["id"]

    got = await as_alice.get(f"{FILES}/notes/today.txt")
    assert got.status_code == 200
    assert got.content == b"hello again"
    assert got.headers["content-type"].startswith("text/plain")
    assert got.headers["etag"] == f'"{replaced.json()["checksum"]}"'
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''today.txt"

    await as_alice.put(
        f"{FILES}/data.bin", content=bytes(range(256)), headers={"Content-Type": "image/png"}
    )
    listing = (await as_alice.get(FILES)).json()
    assert [f["path"] for f in listing["files"]] == ["/data.bin", "/notes/today.txt"]
    assert (await as_alice.get(FILES, params={"prefix": "notes"})).json()["files"][0][
        "path"
    ] == "/notes/today.txt"
    assert (await as_alice.get(f"{FILES}/data.bin")).headers["content-type"] == "image/png"

    assert (await as_alice.delete(f"{FILES}/notes/today.txt")).status_code == 204
    assert_error(await as_alice.get(f"{FILES}/notes/today.txt"), 404, "file_not_found")
    assert_error(await as_alice.delete(f"{FILES}/notes/today.txt"), 404, "file_not_found")


async def test_users_cannot_reach_each_others_files(
    pilot: Pilot, alice: User, as_alice: httpx.AsyncClient, as_bob: httpx.AsyncClient
) -> None:
    await as_alice.put(f"{FILES}/secret.txt", content=b"alice only")
    assert (await as_bob.get(FILES)).json()["files"] == []
    assert_error(await as_bob.get(f"{FILES}/secret.txt"), 404, "file_not_found")
    assert_error(await as_bob.delete(f"{FILES}/secret.txt"), 404, "file_not_found")
    await as_bob.put(f"{FILES}/secret.txt", content=b"bob's own")
    assert (await as_alice.get(f"{FILES}/secret.txt")).content == b"alice only"
    assert await stored_paths(pilot, alice) == ["/secret.txt"]


@pytest.mark.parametrize(
    "raw_path",
    [
        "%2e%2e/x",
        "%2E%2E/%2E%2E/etc/passwd",
        "a/%2e%2e/%2e%2e/x",
        "a%5Cb",
        "..%5Cx",
        "a%00b",
        "nul%00",
        "%0a",
        "p%0A%3F",
        "a%0Db",
        "",
    ],
)
async def test_traversal_and_control_characters_are_400_and_nothing_is_written(
    pilot: Pilot, alice: User, as_alice: httpx.AsyncClient, raw_path: str
) -> None:
    url = f"{FILES}/{raw_path}"
    assert_error(await as_alice.put(url, content=b"x"), 400, "invalid_path")
    assert_error(await as_alice.get(url), 400, "invalid_path")
    assert_error(await as_alice.delete(url), 400, "invalid_path")
    assert await stored_paths(pilot, alice) == []
    assert await stored_blobs(pilot) == 0


@pytest.mark.parametrize("path", ["../x", "a/../../x", "..\\x", "/..", "a/\x00b"])
async def test_literal_dot_dot_paths_are_400(
    app: FastAPI, pilot: Pilot, alice: User, alice_key: str, path: str
) -> None:
    # Sent as-is (curl --path-as-is does this): clients would normalise "..".
    auth = {"Authorization": f"Bearer {alice_key}"}
    status, body = await raw_asgi_request(app, "PUT", f"{FILES}/{path}", body=b"x", headers=auth)
    assert status == 400 and body["error"]["code"] == "invalid_path"  # type: ignore[index]
    assert await stored_paths(pilot, alice) == []


async def test_bad_listing_prefix_is_400(as_alice: httpx.AsyncClient) -> None:
    assert_error(await as_alice.get(FILES, params={"prefix": "../etc"}), 400, "invalid_path")
    assert_error(await as_alice.get(FILES, params={"prefix": "a\\b"}), 400, "invalid_path")


async def test_oversized_upload_is_413_before_reading_and_nothing_is_written(
    pilot: Pilot, alice: User, as_alice: httpx.AsyncClient
) -> None:
    assert pilot.settings.max_file_bytes == 1000
    ok = await as_alice.put(f"{FILES}/fits.bin", content=b"x" * 1000)
    assert ok.status_code == 201

    error = assert_error(
        await as_alice.put(f"{FILES}/big.bin", content=b"x" * 1001), 413, "request_too_large"
    )
    assert error["details"] == {"limit_bytes": 1000}

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(50):
            yield b"y" * 100

    assert_error(
        await as_alice.put(f"{FILES}/big.bin", content=chunked()), 413, "request_too_large"
    )
    assert_error(
        await as_alice.put(f"{FILES}/fits.bin", content=chunked()), 413, "request_too_large"
    )
    assert await stored_paths(pilot, alice) == ["/fits.bin"]
    assert (await as_alice.get(f"{FILES}/fits.bin")).content == b"x" * 1000
    assert await stored_blobs(pilot) == 1
