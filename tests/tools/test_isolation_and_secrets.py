"""Two users never see each other's things; secrets never leave except as block kwargs."""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from blockpilot.errors import WorkspaceFileNotFoundError
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.storage.users import User
from tests.bp_database import is_postgresql, stored_bytes
from tests.tools.bp_helpers import add_api_key, add_host_scoped, call, run_block
from tests.tools.bp_test_blocks import (
    ApiKeyEchoBlock,
    BigOutputBlock,
    EchoTextBlock,
    HostRequestBlock,
    calls_of,
)

# --------------------------------------------------------------------------- two users


async def test_sessions_are_per_user(pilot: Pilot, alice: User, bob: User) -> None:
    first = await run_block(pilot, alice.id, EchoTextBlock.id, {"text": "a"})
    alice_session = first["session_id"]
    for tool, args in (
        ("run_block", {"block_id": EchoTextBlock.id, "input_data": {"text": "b"}}),
        ("find_block", {"query": "echo"}),
    ):
        data = await call(pilot, tool, args, user_id=bob.id, session_id=alice_session)
        assert data["type"] == "error"
        assert data["code"] == "session_not_found"
        assert data["session_id"] is None
    assert len(calls_of("EchoTextBlock")) == 1
    # Alice keeps using her session.
    again = await run_block(
        pilot, alice.id, EchoTextBlock.id, {"text": "c"}, session_id=alice_session
    )
    assert again["session_id"] == alice_session


async def test_unknown_session_id_is_not_found(pilot: Pilot, alice: User) -> None:
    data = await call(pilot, "find_block", {"query": "x"}, user_id=alice.id, session_id="f" * 32)
    assert data["code"] == "session_not_found"


async def test_session_ownership_survives_a_restart(
    pilot: Pilot, pilot_factory: Any, alice: User, bob: User
) -> None:
    first = await run_block(pilot, alice.id, EchoTextBlock.id, {"text": "a"})
    fresh = await pilot_factory()  # empty in-process caches
    data = await run_block(
        fresh, bob.id, EchoTextBlock.id, {"text": "b"}, session_id=first["session_id"]
    )
    assert data["code"] == "session_not_found"
    data = await run_block(
        fresh, alice.id, EchoTextBlock.id, {"text": "b"}, session_id=first["session_id"]
    )
    assert data["type"] == "block_output"


async def test_executions_credentials_and_files_are_per_user(
    pilot_factory: Any, alice: User, bob: User
) -> None:
    p = await pilot_factory(max_output_chars=1000)
    cred_id = await add_api_key(p, alice.id)
    data = await run_block(p, alice.id, ApiKeyEchoBlock.id, {"prompt": "x"})
    exec_id = data["execution_id"]
    assert await p.executions.get(alice.id, exec_id) is not None
    assert await p.executions.get(bob.id, exec_id) is None
    assert await p.executions.list(bob.id) == []
    assert cred_id not in {m.id for m in await p.credentials.candidates(bob.id)}
    assert await p.credential_store.get(bob.id, cred_id) is None
    assert await p.credential_store.get_meta(bob.id, cred_id) is None
    assert not await p.credential_store.delete(bob.id, cred_id)
    assert await p.credential_store.get(alice.id, cred_id) is not None
    # A truncated output's file lives in alice's workspace only.
    data = await run_block(p, alice.id, BigOutputBlock.id, {"size": 3000})
    file_id = re.search(r"workspace://([0-9a-f-]{36})", data["outputs"]["data"][0]).group(1)  # type: ignore[union-attr]
    alice_ws = await p.workspaces.get_or_create_workspace(alice.id)
    bob_ws = await p.workspaces.get_or_create_workspace(bob.id)
    assert alice_ws.id != bob_ws.id
    await p.workspaces.for_workspace(alice_ws).read_by_id(file_id)
    with pytest.raises(WorkspaceFileNotFoundError):
        await p.workspaces.for_workspace(bob_ws).read_by_id(file_id)


async def test_each_user_runs_with_their_own_key(pilot: Pilot, alice: User, bob: User) -> None:
    await add_api_key(pilot, alice.id, key="sk-alice-own-0123456789")
    await add_api_key(pilot, bob.id, key="sk-bob-own-0123456789")
    await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "x"})
    await run_block(pilot, bob.id, ApiKeyEchoBlock.id, {"prompt": "x"})
    alice_run, bob_run = calls_of("ApiKeyEchoBlock")
    assert (
        alice_run["kwargs"]["credentials"].api_key.get_secret_value() == "sk-alice-own-0123456789"
    )
    assert bob_run["kwargs"]["credentials"].api_key.get_secret_value() == "sk-bob-own-0123456789"
    assert alice_run["kwargs"]["user_id"] == alice.id and bob_run["kwargs"]["user_id"] == bob.id


# --------------------------------------------------------------------------- canary secrets


def leak_forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]


def assert_absent(text: str, canaries: list[str], where: str) -> None:
    for canary in canaries:
        for form in leak_forms(canary):
            assert form not in text, f"canary form {form!r} leaked into {where}"


def assert_absent_bytes(data: bytes, canaries: list[str], where: str) -> None:
    for canary in canaries:
        for form in leak_forms(canary):
            assert form.encode() not in data, f"canary form {form!r} found in {where}"


def log_text(records: list[logging.LogRecord]) -> str:
    parts = []
    for record in records:
        parts.append(record.getMessage())
        parts.append(str(record.exc_text or ""))
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        parts.append(repr(record.__dict__))
    return "\n".join(parts)


async def test_canary_secrets_never_leave(
    pilot_factory: Any, alice: User, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    pilot = await pilot_factory(max_output_chars=1000)
    caplog.set_level(logging.DEBUG)
    api_canary = f"sk-canary-{secrets.token_hex(12)}/+="
    header_canary = f"hdr-canary-{secrets.token_hex(12)}"
    await add_api_key(pilot, alice.id, key=api_canary)
    await add_host_scoped(
        pilot,
        alice.id,
        "api.example.com",
        {"X-Api-Key": header_canary, "Authorization": f"Bearer {header_canary}"},
    )
    canaries = [api_canary, header_canary]
    responses: list[dict[str, Any]] = []
    modes = ["ok", "echo", "echo_b64", "echo_url", "echo_big", "error_pin", "block_error", "crash"]
    for mode in modes:
        responses.append(
            await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "hi", "mode": mode})
        )
    # The user pastes the key into an input, too: the record stores it redacted.
    responses.append(
        await run_block(
            pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": f"my key is {api_canary}", "mode": "ok"}
        )
    )
    responses.append(
        await run_block(
            pilot, alice.id, HostRequestBlock.id, {"url": "https://api.example.com/x", "echo": True}
        )
    )
    # Every block really did get the secrets (so the scrubbing, not luck, kept them out).
    assert all(
        c["kwargs"]["credentials"].api_key.get_secret_value() == api_canary
        for c in calls_of("ApiKeyEchoBlock")
    )
    assert (
        calls_of("HostRequestBlock")[0]["kwargs"]["credentials"].header_values()["X-Api-Key"]
        == header_canary
    )
    # The outcomes are the expected ones, with the secret replaced.
    by_mode = dict(zip(modes, responses, strict=False))
    assert by_mode["echo"]["type"] == "block_output"
    assert "[REDACTED]" in by_mode["echo"]["outputs"]["response"][0]
    assert by_mode["echo_b64"]["outputs"]["response"] == ["echo [REDACTED]"]
    assert by_mode["echo_big"]["output_truncated"] is True
    assert by_mode["echo_big"]["outputs"]["response"][0].startswith("[REDACTED] xxx")
    assert by_mode["error_pin"]["code"] == "block_failed"
    assert by_mode["block_error"]["code"] == "block_failed"
    assert by_mode["crash"]["code"] == "internal_error"
    assert responses[-1]["outputs"]["headers"] == [
        {"X-Api-Key": "[REDACTED]", "Authorization": "[REDACTED]"}
    ]

    assert_absent(json.dumps(responses), canaries, "responses")
    records = await pilot.executions.list(alice.id)
    assert len(records) == len(responses)
    assert_absent(
        json.dumps([r.public() for r in records], default=str), canaries, "execution records"
    )
    pasted = next(r for r in records if "my key is" in json.dumps(r.input_redacted))
    assert pasted.input_redacted["prompt"] == "my key is [REDACTED]"
    assert caplog.records, "failures were logged"
    assert any(r.exc_text for r in caplog.records), "the crash was logged with its traceback"
    assert_absent(caplog.text, canaries, "log text")
    assert_absent(log_text(caplog.records), canaries, "log records")

    # The full value saved to the workspace is the scrubbed one.
    file_id = re.search(
        r"workspace://([0-9a-f-]{36})", by_mode["echo_big"]["outputs"]["response"][0]
    )
    assert file_id is not None
    workspace = await pilot.workspaces.get_or_create_workspace(alice.id)
    _, saved = await pilot.workspaces.for_workspace(workspace).read_by_id(file_id.group(1))
    assert saved.decode().startswith("[REDACTED] xxx") and saved.decode().endswith("xxx [REDACTED]")

    await pilot.close()  # flush everything to disk
    files = [p for p in Path(settings.home).rglob("*") if p.is_file()]
    assert is_postgresql(pilot) or any(p.name == "blockpilot.db" for p in files)
    assert any("workspaces" in p.parts for p in files)
    for path in files:
        assert_absent_bytes(path.read_bytes(), canaries, str(path))
    # Every column of every table (on SQLite: the database file again).
    assert_absent_bytes(await stored_bytes(pilot), canaries, "the database")


async def test_secret_in_an_exception_is_scrubbed_from_the_logged_traceback(
    pilot: Pilot, alice: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    canary = f"canary{secrets.token_hex(10)}"  # no well-known secret shape at all
    await add_api_key(pilot, alice.id, key=canary)
    data = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "x", "mode": "crash"})
    assert data["code"] == "internal_error"
    assert "[REDACTED]" in data["message"]
    assert "Traceback" in caplog.text
    assert_absent(caplog.text, [canary], "log text")
    assert_absent(log_text(caplog.records), [canary], "log records")


async def test_unknown_user_is_an_error_response_not_an_exception(pilot: Pilot) -> None:
    # Regression: call_tool raised a raw IntegrityError (foreign key) for an unknown user.
    for user_id in ("no-such-user", "00000000-0000-4000-8000-000000000000"):
        data = await call(pilot, "find_block", {"query": "echo"}, user_id=user_id)
        assert data["type"] == "error"
        assert data["code"] == "user_not_found"
        data = await run_block(pilot, user_id, EchoTextBlock.id, {"text": "x"})
        assert data["code"] == "user_not_found"
    assert calls_of("EchoTextBlock") == []


async def test_non_string_session_id_is_not_found(pilot: Pilot, alice: User) -> None:
    # Regression: a non-string session id crashed building the error message.
    for session_id in (5, ["s"], {"id": "s"}):
        data = await call(
            pilot, "find_block", {"query": "echo"}, user_id=alice.id, session_id=session_id
        )
        assert data["code"] == "session_not_found"
