"""Request ids and access logs: one structured line per request, never keys or bodies."""

from __future__ import annotations

import logging
import os

import httpx
import pytest

from blockpilot.ids import random_hex128
from blockpilot.storage.users import User

BODY_CANARY = "sk-body-canary-0123456789abcdef"


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "blockpilot.api.access"]


async def test_client_request_id_is_echoed_and_bad_ones_replaced(
    as_alice: httpx.AsyncClient,
) -> None:
    ok = await as_alice.get("/api/v1/sessions", headers={"X-Request-Id": "trace-123.abc"})
    assert ok.headers["x-request-id"] == "trace-123.abc"
    for bad in ("has spaces", "x" * 65, "line\tbreak"):
        replaced = await as_alice.get("/api/v1/sessions", headers={"X-Request-Id": bad})
        assert replaced.headers["x-request-id"] != bad
        assert len(replaced.headers["x-request-id"]) == 32
    generated = await as_alice.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32


async def test_one_access_line_per_request_with_user_and_no_secrets(
    alice: User,
    alice_key: str,
    as_alice: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    await as_alice.post(
        "/api/v1/credentials?default=true",
        json={"provider": "openai", "type": "api_key", "api_key": BODY_CANARY},
        headers={"X-Request-Id": "req-1"},
    )
    await anon.get("/api/v1/sessions", headers={"X-Request-Id": "req-2"})

    first, second = access_records(caplog)
    assert first.request_id == "req-1"  # type: ignore[attr-defined]
    assert (first.method, first.path, first.status, first.user_id) == (
        "POST",
        "/api/v1/credentials",
        201,
        alice.id,
    )  # type: ignore[attr-defined]
    assert isinstance(first.duration_ms, float)  # type: ignore[attr-defined]
    assert (second.status, second.user_id) == (401, None)  # type: ignore[attr-defined]
    everything = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert alice_key not in everything
    assert BODY_CANARY not in everything


async def test_logged_path_is_percent_encoded(
    as_alice: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await as_alice.get("/api/v1/workspace/files/a%0d%0aforged%20line")
    (record,) = access_records(caplog)
    assert "\n" not in record.getMessage() and "\r" not in record.getMessage()
    assert record.path == "/api/v1/workspace/files/a%0d%0aforged%20line"  # type: ignore[attr-defined]


def test_new_request_ids_are_random_hex_never_repeated_nor_shared_with_a_fork() -> None:
    """New request ids are ``ids.random_hex128`` (words read from the OS in batches)."""
    ids = [random_hex128() for _ in range(3 * 256 + 7)]  # several batches
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        try:
            os.write(write_end, random_hex128().encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    with os.fdopen(read_end) as answer:
        child_id = answer.read()
    pending = {random_hex128() for _ in range(100)}  # what the parent's batch still held
    assert len(child_id) == 32 and child_id not in pending and child_id not in ids
