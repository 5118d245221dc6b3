"""The blob backend a test's workspace files live on: ``file:``, ``database:`` or ``s3://``.

Every test's Settings (``settings_factory``) use the ``workspace_url`` fixture, which is
``file:`` unless the test is marked ``workspace_backends``: such a test runs once per backend
(``[file]``, ``[database]``, ``[s3]``), S3 against a real S3-compatible server (moto in server
mode) on a local port, one bucket per test. Mark a module with
``pytestmark = pytest.mark.workspace_backends``; a test that only makes sense on some backends
narrows it with ``@pytest.mark.workspace_backends("file")``.

The helpers below look at what a backend holds (blobs, chunk rows, objects) without going
through blockpilot, so tests can count leftovers and damage a blob on any backend.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, func, select, update

from blockpilot.pilot import Pilot
from blockpilot.storage.common import utcnow
from blockpilot.storage.tables import workspace_blob_holds, workspace_blobs

WORKSPACE_BACKENDS = ("file", "database", "s3")
S3_SECRET_CANARY = "canary-aws-secret-0f9c2b7e51d4"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "workspace_backends(*names): run once per workspace blob backend "
        "(file, database, s3; all three without names)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("workspace_backends")
    if marker is None or "workspace_backend" not in metafunc.fixturenames:
        return
    names = marker.args or WORKSPACE_BACKENDS
    unknown = set(names) - set(WORKSPACE_BACKENDS)
    assert not unknown, f"unknown workspace backends {unknown}"
    metafunc.parametrize("workspace_backend", names, indirect=True)


@pytest.fixture
def workspace_backend(request: pytest.FixtureRequest) -> str:
    """The blob backend of the test's Settings: ``file`` unless marked ``workspace_backends``."""
    return str(getattr(request, "param", "file"))


@pytest.fixture
def workspace_url(workspace_backend: str, request: pytest.FixtureRequest) -> str:
    """``BLOCKPILOT_WORKSPACE_URL`` for :func:`workspace_backend` (S3: a bucket of its own)."""
    if workspace_backend == "s3":
        return f"s3://{request.getfixturevalue('s3_bucket')}/workspaces"
    return f"{workspace_backend}:"


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
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-access-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_CANARY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    bucket = f"bp-{secrets.token_hex(6)}"
    _s3_client(s3_server).create_bucket(Bucket=bucket)
    return bucket


def _s3_client(endpoint: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def s3_keys(bucket: str, endpoint: str) -> list[str]:
    """Every object key in *bucket*."""
    found = _s3_client(endpoint).list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(item["Key"] for item in found)


def _s3_location(pilot: Pilot) -> tuple[str, str]:
    """(bucket, key prefix ending in "/") of *pilot*'s S3 backend."""
    bucket, _, prefix = pilot.settings.effective_workspace_url.removeprefix("s3://").partition("/")
    return bucket, f"{prefix}/" if prefix else ""


def backend_of(pilot: Pilot) -> str:
    url = pilot.settings.effective_workspace_url
    return "s3" if url.startswith("s3://") else url.rstrip(":")


async def stored_blobs(pilot: Pilot, workspace_id: str | None = None) -> int:
    """How many blobs *pilot*'s backend holds (of one workspace, or of all), whether or not a
    file names them: files in the folder, distinct chunked blobs, or objects."""
    backend = backend_of(pilot)
    if backend == "file":
        root = pilot.settings.home / "workspaces"
        if workspace_id is not None:
            root = root / workspace_id
        return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0
    if backend == "database":
        query = select(func.count(func.distinct(workspace_blobs.c.blob)))
        if workspace_id is not None:
            query = query.where(workspace_blobs.c.workspace_id == workspace_id)
        async with pilot.engine.connect() as conn:
            return int(await conn.scalar(query) or 0)
    bucket, prefix = _s3_location(pilot)
    if workspace_id is not None:
        prefix += f"{workspace_id}/"
    return sum(
        1 for key in s3_keys(bucket, os.environ["AWS_ENDPOINT_URL"]) if key.startswith(prefix)
    )


async def overwrite_blobs(pilot: Pilot, workspace_id: str, data: bytes | None) -> int:
    """Replace the bytes of every blob of *workspace_id* with *data* behind blockpilot's back,
    or remove them (*data* None): damage as a disk, an operator or a bucket policy could do it.
    Returns how many blobs were touched."""
    backend = backend_of(pilot)
    if backend == "file":
        root = pilot.settings.home / "workspaces" / workspace_id
        blobs = [p for p in root.iterdir() if p.is_file()] if root.exists() else []
        for path in blobs:
            if data is None:
                path.unlink()
            else:
                path.write_bytes(data)
        return len(blobs)
    if backend == "database":
        where = workspace_blobs.c.workspace_id == workspace_id
        async with pilot.engine.begin() as conn:
            names = (await conn.execute(select(workspace_blobs.c.blob).where(where))).scalars()
            count = len(set(names))
            if data is None:
                await conn.execute(delete(workspace_blobs).where(where))
            else:
                await conn.execute(delete(workspace_blobs).where(where, workspace_blobs.c.seq > 0))
                await conn.execute(update(workspace_blobs).where(where).values(data=data))
        return count
    bucket, prefix = _s3_location(pilot)
    client = _s3_client(os.environ["AWS_ENDPOINT_URL"])
    keys = [k for k in s3_keys(bucket, os.environ["AWS_ENDPOINT_URL"]) if k.startswith(prefix)]
    keys = [k for k in keys if k.removeprefix(prefix).startswith(f"{workspace_id}/")]
    for key in keys:
        if data is None:
            client.delete_object(Bucket=bucket, Key=key)
        else:
            client.put_object(Bucket=bucket, Key=key, Body=data)
    return len(keys)


async def live_holds(pilot: Pilot) -> int:
    """Holds on blobs (uploads under way, readers) that have not run out."""
    query = select(func.count()).where(workspace_blob_holds.c.expires_at > utcnow())
    async with pilot.engine.connect() as conn:
        return int(await conn.scalar(query) or 0)


async def expire_holds(pilot: Pilot) -> None:
    """Let every hold run out, as if its holder had been gone for longer than a hold lasts."""
    async with pilot.engine.begin() as conn:
        await conn.execute(update(workspace_blob_holds).values(expires_at=utcnow()))
