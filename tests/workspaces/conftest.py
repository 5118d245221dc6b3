"""Fixtures for workspace tests, and the blob backends they run on (file, database, s3)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from blockpilot.pilot import Pilot


@pytest.fixture
async def make_pilot(settings_factory) -> AsyncIterator[Callable[..., Awaitable[Pilot]]]:
    """Open a Pilot with custom settings (e.g. max_file_bytes)."""
    opened: list[Pilot] = []

    async def make(**overrides: Any) -> Pilot:
        pilot = await Pilot.open(settings_factory(**overrides))
        opened.append(pilot)
        return pilot

    yield make
    for pilot in opened:
        await pilot.close()


@pytest.fixture
async def alice_files(pilot, alice):
    workspace = await pilot.workspaces.get_or_create_workspace(alice.id)
    return pilot.workspaces.for_workspace(workspace)


@pytest.fixture
async def bob_files(pilot, bob):
    workspace = await pilot.workspaces.get_or_create_workspace(bob.id)
    return pilot.workspaces.for_workspace(workspace)


# --------------------------------------------------------------------------- blob backends

BACKENDS = ("file", "database", "s3")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-compatible server (moto in server mode) on a free local port: its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on :func:`s3_server`, with the ``AWS_*`` variables pointing at it."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-access-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_CANARY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    bucket = f"bp-{secrets.token_hex(6)}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    return bucket


S3_SECRET_CANARY = "canary-aws-secret-0f9c2b7e51d4"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the blob backend a test runs on (file, database, s3)."""
    return str(request.param)


@pytest.fixture
def workspace_url(backend: str, request: pytest.FixtureRequest) -> str:
    """``BLOCKPILOT_WORKSPACE_URL`` for :func:`backend` (an S3 bucket made for the test)."""
    if backend == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        return f"s3://{bucket}/workspaces"
    return f"{backend}:"


def s3_keys(bucket: str, endpoint: str) -> list[str]:
    """Every object key in *bucket*."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    found = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(item["Key"] for item in found)
