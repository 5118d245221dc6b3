"""Two users (docs/security.md): bob tries alice's ids everywhere an id is taken.

Alice has one credential of every type (her GitHub OAuth token is expired, so any use of it
would refresh it at the fake provider), a workspace file, an execution, a chat session and
an MCP session. Bob, with his own API key, tries her ids over every HTTP route, MCP tool and
CLI command that takes one, including ids nested in block inputs the way a model would send
them. Every attempt must be "not found" (404 / missing / exit 3) or a request for his own
credentials, and must leave no trace: no refresh of alice's token, no request to GitHub, no
file read or deleted, no credential deleted, no execution recorded.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from mcp import Client
from typer.testing import CliRunner

from blockpilot.api import create_app
from blockpilot.cli.app import app as cli_app
from blockpilot.mcp import build_mcp_server
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.testing import FakeGitHub, FakeOAuthProvider
from tests.security.sec_helpers import (
    AUTH_WEB_REQUEST_ID,
    CALCULATOR_ID,
    CANARIES,
    EMAIL_ID,
    GITHUB_ISSUE_ID,
    LLM_ID,
    READ_FILE_ID,
    WRITE_FILE_ID,
    serve_app,
)

ALICE_FILE = "/alice/diary.txt"
ALICE_FILE_BODY = b"alice's private words 5e1f"
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    },
}


@dataclass
class World:
    pilot: Pilot
    settings: Settings
    alice_id: str
    bob_id: str
    alice_key: str
    bob_key: str
    creds: dict[str, str]  # alice's credential ids by type
    execution_id: str
    session_id: str
    github: FakeGitHub
    oauth: FakeOAuthProvider
    secrets: list[str]


@pytest.fixture
def providers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeGitHub, FakeOAuthProvider]]:
    with FakeGitHub() as github, FakeOAuthProvider(scopes=["repo"]) as oauth:
        yield github, oauth


@pytest.fixture
async def world(
    settings_factory: Any,
    providers: tuple[FakeGitHub, FakeOAuthProvider],
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    github, oauth = providers
    env = {
        "BLOCKPILOT_PROVIDER_GITHUB_BASE_URL": github.base_url,
        "BLOCKPILOT_PROVIDER_GITHUB_CLIENT_ID": oauth.client_id,
        "BLOCKPILOT_PROVIDER_GITHUB_CLIENT_SECRET": str(oauth.client_secret),
        "BLOCKPILOT_PROVIDER_GITHUB_TOKEN_URL": oauth.token_url,
    }
    settings = settings_factory()  # clears BLOCKPILOT_* first; the provider settings come after
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pilot = await Pilot.open(settings)
    alice, alice_key = await pilot.users.create("alice")
    bob, bob_key = await pilot.users.create("bob")
    tokens = oauth.issue_tokens(["repo"])
    access = CANARIES.new("gho_")
    secrets = [access, tokens["refresh_token"], *(CANARIES.new(n) for n in ("sk-", "smtp", "hdr"))]
    CANARIES.canaries.append(tokens["refresh_token"])
    github.allow_token(access)
    github.add_issue("o", "r", 1, "alice's issue")
    creds = {}
    for kind, data in {
        "oauth2": {
            "provider": "github",
            "type": "oauth2",
            "access_token": access,
            "refresh_token": tokens["refresh_token"],
            "access_token_expires_at": int(time.time()) - 60,
            "scopes": ["repo"],
        },
        "api_key": {"provider": "openai", "type": "api_key", "api_key": secrets[2]},
        "user_password": {
            "provider": "smtp",
            "type": "user_password",
            "username": "alice",
            "password": secrets[3],
            "host": "smtp.example.com",
        },
        "host_scoped": {
            "provider": "http",
            "type": "host_scoped",
            "host": "api.example.com",
            "headers": {"X-Api-Key": secrets[4]},
        },
    }.items():
        creds[kind] = (await pilot.add_credentials(alice.id, data)).id
    workspace = await pilot.workspaces.get_or_create_workspace(alice.id)
    await pilot.workspaces.for_workspace(workspace).write(ALICE_FILE, ALICE_FILE_BODY)
    ran = json.loads(
        (
            await pilot.call_tool(
                "run_block",
                {"block_id": CALCULATOR_ID, "input_data": {"operation": "add", "a": 1, "b": 2}},
                user_id=alice.id,
            )
        ).to_json()
    )
    world = World(
        pilot,
        settings,
        alice.id,
        bob.id,
        alice_key,
        bob_key,
        creds,
        ran["execution_id"],
        ran["session_id"],
        github,
        oauth,
        secrets,
    )
    try:
        yield world
    finally:
        await pilot.close()


def _nested_id_forms(cred_id: str, provider: str, kind: str) -> list[Any]:
    """How a model might name a credential in input_data."""
    return [
        cred_id,
        {"id": cred_id},
        {"id": cred_id, "provider": provider, "type": kind, "title": "x"},
    ]


def _block_attempts(world: World) -> list[tuple[str, dict[str, Any]]]:
    """run_block calls that name one of alice's credentials inside input_data."""
    c = world.creds
    attempts = []
    for form in _nested_id_forms(c["oauth2"], "github", "oauth2"):
        attempts.append(
            (
                GITHUB_ISSUE_ID,
                {"issue_url": f"{world.github.base_url}/repos/o/r/issues/1", "credentials": form},
            )
        )
    for form in _nested_id_forms(c["api_key"], "openai", "api_key"):
        attempts.append((LLM_ID, {"prompt": "hi", "credentials": form}))
    for form in _nested_id_forms(c["user_password"], "smtp", "user_password"):
        attempts.append(
            (
                EMAIL_ID,
                {"to_email": "a@example.com", "subject": "s", "body": "b", "credentials": form},
            )
        )
    for form in _nested_id_forms(c["host_scoped"], "http", "host_scoped"):
        attempts.append(
            (
                AUTH_WEB_REQUEST_ID,
                {"url": "https://api.example.com/", "method": "GET", "credentials": form},
            )
        )
    return attempts


async def _assert_no_side_effects(world: World) -> None:
    pilot = world.pilot
    assert world.oauth.refresh_count == 0, "alice's token was refreshed"
    assert world.github.hits == 0, "GitHub was called"
    metas = await pilot.credential_store.list_meta(world.alice_id)
    assert {m.id for m in metas} == set(world.creds.values())
    assert not any(m.needs_reauthorization or m.last_used_at for m in metas)
    workspace = await pilot.workspaces.get_or_create_workspace(world.alice_id)
    assert await pilot.workspaces.for_workspace(workspace).read(ALICE_FILE) == ALICE_FILE_BODY
    assert [r.id for r in await pilot.executions.list(world.alice_id)] == [world.execution_id]
    # bob's only runs are his own failed reads of a file he does not have
    for record in await pilot.executions.list(world.bob_id):
        assert (record.block_id, record.status, record.error_code) == (
            READ_FILE_ID,
            "failed",
            "file_not_found",
        )
        assert record.credential_ids == []
    assert [s.session_id for s in await pilot.sessions.list(world.alice_id)] == [world.session_id]


def _assert_not_bobs(text: str, world: World) -> None:
    """Bob's answers hold none of alice's secrets or private data."""
    CANARIES.saw("bob's view", text)
    assert ALICE_FILE_BODY.decode() not in text
    for secret in world.secrets:
        assert secret not in text


async def test_http_api_two_user_matrix(world: World) -> None:
    app = create_app(world.pilot)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {world.bob_key}"},
    ) as bob:
        results: list[tuple[str, httpx.Response]] = []
        for kind, cred_id in world.creds.items():
            results.append((f"test {kind}", await bob.post(f"/api/v1/credentials/{cred_id}/test")))
            results.append((f"delete {kind}", await bob.delete(f"/api/v1/credentials/{cred_id}")))
        results.append(("execution", await bob.get(f"/api/v1/executions/{world.execution_id}")))
        results.append(("file get", await bob.get(f"/api/v1/workspace/files{ALICE_FILE}")))
        results.append(("file delete", await bob.delete(f"/api/v1/workspace/files{ALICE_FILE}")))
        for tool, args in (
            ("find_block", {"query": "email"}),
            (
                "run_block",
                {"block_id": CALCULATOR_ID, "input_data": {"operation": "add", "a": 1, "b": 1}},
            ),
        ):
            results.append(
                (
                    f"{tool} in alice's session",
                    await bob.post(
                        f"/api/v1/tools/{tool}",
                        json=args,
                        headers={"X-Session-Id": world.session_id},
                    ),
                )
            )
        for status_name, response in results:
            _assert_not_bobs(response.text, world)
            assert response.status_code == 404, (status_name, response.text)
            assert response.json()["error"]["code"].endswith("not_found"), (
                status_name,
                response.text,
            )
        # ids nested in block inputs: treated as missing, a setup request for bob's own account
        for block_id, input_data in _block_attempts(world):
            response = await bob.post(
                "/api/v1/tools/run_block", json={"block_id": block_id, "input_data": input_data}
            )
            _assert_not_bobs(response.text, world)
            data = response.json()
            assert data["type"] == "setup_requirements", (block_id, input_data, data)
        # alice's file through the file blocks, and bob's own file of the same name
        read = await bob.post(
            "/api/v1/tools/run_block",
            json={"block_id": READ_FILE_ID, "input_data": {"path": ALICE_FILE}},
        )
        _assert_not_bobs(read.text, world)
        assert read.json()["type"] == "error"
        # user ids in the body, query or headers are ignored: only the API key counts
        listed = await bob.get(
            f"/api/v1/executions?user_id={world.alice_id}", headers={"X-User-Id": world.alice_id}
        )
        assert [e["block_id"] for e in listed.json()["executions"]] == [
            READ_FILE_ID
        ]  # his own read
        files = await bob.get(
            "/api/v1/workspace/files", params={"prefix": "/alice", "user_id": world.alice_id}
        )
        assert files.json()["files"] == []
        sessions = await bob.get("/api/v1/sessions")
        assert world.session_id not in sessions.text
        creds = await bob.get("/api/v1/credentials")
        assert all(cred_id not in creds.text for cred_id in world.creds.values())
        await _assert_no_side_effects(world)
        # bob writing the same path makes his own file; alice's is untouched
        put = await bob.put(f"/api/v1/workspace/files{ALICE_FILE}", content=b"bob's")
        assert put.status_code == 201
        added = await bob.post(
            "/api/v1/credentials",
            json={
                "provider": "openai",
                "type": "api_key",
                "api_key": "sk-bob-0123456789",
                "user_id": world.alice_id,
                "id": world.creds["api_key"],
            },
        )
        assert added.status_code in (201, 422), added.text
        if added.status_code == 201:
            assert added.json()["id"] != world.creds["api_key"]
    workspace = await world.pilot.workspaces.get_or_create_workspace(world.alice_id)
    assert await world.pilot.workspaces.for_workspace(workspace).read(ALICE_FILE) == ALICE_FILE_BODY
    assert {m.id for m in await world.pilot.credential_store.list_meta(world.alice_id)} == set(
        world.creds.values()
    )
    assert world.oauth.refresh_count == 0


async def test_mcp_two_user_matrix(world: World) -> None:
    # In-process SDK client as bob: alice's ids inside run_block inputs.
    async with Client(build_mcp_server(world.pilot, world.bob_id)) as client:
        for block_id, input_data in _block_attempts(world):
            result = await client.call_tool(
                "run_block", {"block_id": block_id, "input_data": input_data}
            )
            _assert_not_bobs(json.dumps(result.structured_content), world)
            assert result.structured_content["type"] == "setup_requirements"
        read = await client.call_tool(
            "run_block", {"block_id": READ_FILE_ID, "input_data": {"path": ALICE_FILE}}
        )
        _assert_not_bobs(json.dumps(read.structured_content), world)
        assert read.is_error
    # Over HTTP (the real service at /mcp): alice's MCP session with bob's key is a 404.
    async with serve_app(create_app(world.pilot)) as base, httpx.AsyncClient(timeout=20) as http:
        opened = await http.post(
            f"{base}/mcp",
            json=INIT,
            headers={**MCP_HEADERS, "Authorization": f"Bearer {world.alice_key}"},
        )
        assert opened.status_code == 200
        mcp_session = opened.headers["mcp-session-id"]
        for method, params in (
            ("tools/list", {}),
            (
                "tools/call",
                {
                    "name": "run_block",
                    "arguments": {
                        "block_id": CALCULATOR_ID,
                        "input_data": {"operation": "add", "a": 1, "b": 1},
                    },
                },
            ),
            ("tools/call", {"name": "find_block", "arguments": {"query": "email"}}),
        ):
            hijack = await http.post(
                f"{base}/mcp",
                json={"jsonrpc": "2.0", "id": 2, "method": method, "params": params},
                headers={
                    **MCP_HEADERS,
                    "Authorization": f"Bearer {world.bob_key}",
                    "mcp-session-id": mcp_session,
                },
            )
            _assert_not_bobs(hijack.text, world)
            assert hijack.status_code == 404, (method, hijack.text)
        closed = await http.delete(
            f"{base}/mcp",
            headers={
                **MCP_HEADERS,
                "Authorization": f"Bearer {world.bob_key}",
                "mcp-session-id": mcp_session,
            },
        )
        assert closed.status_code == 404
    await _assert_no_side_effects(world)


@pytest.mark.slow
async def test_cli_two_user_matrix(world: World) -> None:
    env = {
        "BLOCKPILOT_HOME": str(world.settings.home),
        "BLOCKPILOT_ENCRYPTION_KEYS": world.settings.encryption_keys[0].get_secret_value(),
    }
    runner = CliRunner()

    def cli(*args: str) -> Any:
        result = runner.invoke(cli_app, list(args), env=env)
        _assert_not_bobs(result.stdout + result.stderr, world)
        return result

    async def run(*args: str) -> Any:
        return await asyncio.to_thread(cli, *args)

    for cred_id in world.creds.values():
        assert (await run("credentials", "delete", "--user", "bob", cred_id)).exit_code == 3
    assert (await run("executions", "show", "--user", "bob", world.execution_id)).exit_code == 3
    calc = json.dumps(
        {"block_id": CALCULATOR_ID, "input_data": {"operation": "add", "a": 1, "b": 1}}
    )
    assert (
        await run(
            "tool", "run_block", "--user", "bob", "--session", world.session_id, "--args", calc
        )
    ).exit_code == 3
    assert (
        await run(
            "tool",
            "find_block",
            "--user",
            "bob",
            "--session",
            world.session_id,
            "--args",
            '{"query": "x"}',
        )
    ).exit_code == 3
    assert (
        await run(
            "run",
            "CalculatorBlock",
            "--user",
            "bob",
            "--session",
            world.session_id,
            "--input",
            '{"operation": "add", "a": 1, "b": 1}',
        )
    ).exit_code == 3
    for block_id, input_data in _block_attempts(world):
        args = json.dumps({"block_id": block_id, "input_data": input_data})
        result = await run("tool", "run_block", "--user", "bob", "--args", args)
        assert json.loads(result.stdout)["type"] == "setup_requirements", result.stdout
        ran = await run("run", block_id, "--user", "bob", "--input", json.dumps(input_data))
        assert ran.exit_code == 4, ran.stdout + ran.stderr  # connect an account (his own)
    listed = await run("--json", "credentials", "list", "--user", "bob")
    assert json.loads(listed.stdout) == []
    read = await run(
        "run", READ_FILE_ID, "--user", "bob", "--input", json.dumps({"path": ALICE_FILE})
    )
    assert read.exit_code == 7  # bob's own run: no such file in his workspace
    executions = await run("--json", "executions", "list", "--user", "bob")
    assert [e["block_id"] for e in json.loads(executions.stdout)] == [READ_FILE_ID]
    await _assert_no_side_effects(world)
    # Positive control: alice's own run does refresh her expired token
    # (so 0 above means "never used").
    ran = json.loads(
        (
            await world.pilot.call_tool(
                "run_block",
                {
                    "block_id": GITHUB_ISSUE_ID,
                    "input_data": {"issue_url": f"{world.github.base_url}/repos/o/r/issues/1"},
                },
                user_id=world.alice_id,
            )
        ).to_json()
    )
    CANARIES.saw("alice's own run", ran)
    assert world.oauth.refresh_count == 1
    assert ran["type"] in ("block_output", "error")


async def test_a_write_block_for_bob_never_lands_in_alices_workspace(world: World) -> None:
    for path in (ALICE_FILE, f"../{world.alice_id}{ALICE_FILE}", f"/../../{world.alice_id}/x"):
        response = await world.pilot.call_tool(
            "run_block",
            {"block_id": WRITE_FILE_ID, "input_data": {"path": path, "content": "bob was here"}},
            user_id=world.bob_id,
        )
        CANARIES.saw("bob write", response.to_json())
    workspace = await world.pilot.workspaces.get_or_create_workspace(world.alice_id)
    files = world.pilot.workspaces.for_workspace(workspace)
    assert [f.path for f in await files.list()] == [ALICE_FILE]
    assert await files.read(ALICE_FILE) == ALICE_FILE_BODY
