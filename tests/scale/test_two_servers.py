"""Two (and three) ``blockpilot serve`` processes on one PostgreSQL and one Redis.

Everything is real and over sockets: the servers are separate OS processes started with the
CLI, PostgreSQL and Redis are Debian's servers, the OAuth provider and GitHub are local fakes
(``blockpilot.testing``). The tests check what the issue promises:

* 50 concurrent run_block calls spread over both processes, all needing the same expired
  OAuth token (the provider rotates refresh tokens): one refresh, 50 successes, and the
  per-user cap on concurrent tool calls holds across the processes;
* a process killed with SIGKILL mid-run: its run ends ``interrupted`` (after its lease),
  nothing else is lost;
* PostgreSQL restarted and stopped under load: 503 and not ready while down, no 500s, back
  without restarting blockpilot, and every run a client was told about is in the database;
* Redis down: refreshing a rotating token fails closed with a clear error, everything else
  keeps working, and it all recovers by itself;
* at most once: twenty concurrent calls with one Idempotency-Key over both processes run the
  block once, and an approval survives a SIGKILL of the process that recorded it and is used
  once (docs/approvals.md).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from blockpilot.approvals.policy import Decision, PolicyRule, Selector
from blockpilot.blocks.library.github import GithubReadIssueBlock
from blockpilot.credentials.crypto import KeyRing
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.testing import FakeGitHub, FakeOAuthProvider, RecordedRequest, Response
from tests.scale.scale_services import PostgresCluster, RedisServer, free_port

GH = GithubReadIssueBlock.id
FAST_ISSUE = "https://github.com/octo/demo/issues/7"
SLOW_ISSUE = "https://github.com/octo/demo/issues/999"
PROCESS_LEASE_SECONDS = 3.0  # short, for the SIGKILL test; long enough for a busy CI machine
MAX_CONCURRENT = 8
GITHUB_SECONDS = 0.1  # each fast issue request takes this long, so calls overlap


# -- the deployment ------------------------------------------------------------------------------


class GitHubUpstream:
    """FakeGitHub accepting exactly the provider's valid tokens, counting requests in flight."""

    def __init__(self, provider: FakeOAuthProvider) -> None:
        self.provider = provider
        self.server = FakeGitHub()
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.server.add_route("GET", "/repos/{owner}/{repo}/issues/{number}", self._issue)

    def _issue(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        token = (request.header("authorization") or "").removeprefix("Bearer ")
        if not self.provider.access_token_valid(token):
            return Response.json({"message": "Bad credentials"}, status=401)
        if params["number"] == "999":
            return Response.json({"title": "slow"}, delay=60)  # cut short when the server stops
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(GITHUB_SECONDS)
        finally:
            with self._lock:
                self.in_flight -= 1
        return Response.json({"title": "Scale me", "body": "b", "user": {"login": "mona"}})

    def reset(self) -> None:
        with self._lock:
            self.max_in_flight = 0


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Account:
    user_id: str
    api_key: str
    cred_id: str
    refresh_token: str


@dataclass
class Deployment:
    root: Path
    cluster: PostgresCluster
    redis: RedisServer
    provider: FakeOAuthProvider
    github: GitHubUpstream
    key: str
    servers: list[Server] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        return self.cluster.url("blockpilot")

    def env(self, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPILOT_")}
        env.update(
            BLOCKPILOT_HOME=str(self.root / f"home-{name}"),  # nothing shared on disk
            BLOCKPILOT_DATABASE_URL=self.database_url,
            BLOCKPILOT_REDIS_URL=self.redis.url,
            BLOCKPILOT_ENCRYPTION_KEYS=self.key,
            BLOCKPILOT_HTTP_ALLOWED_HOSTS="127.0.0.1",
            BLOCKPILOT_PROVIDER_GITHUB_CLIENT_ID=self.provider.client_id,
            BLOCKPILOT_PROVIDER_GITHUB_CLIENT_SECRET=self.provider.client_secret or "",
            BLOCKPILOT_PROVIDER_GITHUB_TOKEN_URL=self.provider.token_url,
            BLOCKPILOT_PROVIDER_GITHUB_BASE_URL=self.github.server.base_url,
            BLOCKPILOT_PROCESS_LEASE_SECONDS=str(PROCESS_LEASE_SECONDS),
            BLOCKPILOT_MAX_CONCURRENT_RUNS_PER_USER=str(MAX_CONCURRENT),
            BLOCKPILOT_RATE_LIMIT_PER_MINUTE="1000000",
            BLOCKPILOT_LOG_LEVEL="WARNING",
        )
        return env

    def start_server(self, name: str) -> Server:
        port = free_port()
        log = self.root / f"{name}.log"
        script = Path(sys.executable).with_name("blockpilot")
        command = (
            [str(script)]
            if script.exists()
            else [sys.executable, "-c", "from blockpilot.cli.app import main; main()"]
        )
        with log.open("wb") as out:
            process = subprocess.Popen(
                # One process per server: each stands for a machine, and the tests count
                # processes (instance ids, kills) as servers.
                [*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                env=self.env(name),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Server(name, port, process, log)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server {name} did not start:\n{server.log_tail()}")
            time.sleep(0.1)
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
        for server in self.servers:
            try:
                server.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()

    # -- data, through a Pilot of the test's own on the same database ----------------------

    def pilot_settings(self) -> Settings:
        return Settings.load(
            home=self.root / "home-test",
            database_url=self.database_url,
            encryption_keys=(self.key,),
        )

    async def new_account(self, name: str, *, expires_in: int) -> Account:
        """A user with an API key and a GitHub OAuth credential expiring in *expires_in* s."""
        pilot = await Pilot.open(self.pilot_settings())
        try:
            user, api_key = await pilot.users.create(name)
            tokens = self.provider.issue_tokens(scopes=["repo"], expires_in=max(expires_in, 1))
            meta = await pilot.add_credentials(
                user.id,
                {
                    "provider": "github",
                    "type": "oauth2",
                    "access_token": tokens["access_token"],
                    "refresh_token": tokens["refresh_token"],
                    "access_token_expires_at": int(time.time()) + expires_in,
                    "scopes": ["repo"],
                },
            )
        finally:
            await pilot.close()
        return Account(user.id, api_key, meta.id, tokens["refresh_token"])


@pytest.fixture(scope="module")
def deployment(postgres_binaries: Path, redis_binary: str) -> Iterator[Deployment]:
    root = Path(tempfile.mkdtemp(prefix="bp-scale-"))
    cluster = PostgresCluster(postgres_binaries)
    cluster.init()
    cluster.start()
    cluster.create_database("blockpilot")
    redis = RedisServer(redis_binary)
    redis.start()
    provider = FakeOAuthProvider(scopes=["repo"], rotate_refresh_tokens=True).start()
    github = GitHubUpstream(provider)
    github.server.start()
    deployment = Deployment(root, cluster, redis, provider, github, KeyRing.generate_key())
    try:
        deployment.start_server("a")
        deployment.start_server("b")
        yield deployment
    finally:
        deployment.stop_all()
        github.server.stop()
        provider.stop()
        redis.destroy()
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


# -- helpers ---------------------------------------------------------------------------------


async def run_block(
    client: httpx.AsyncClient, server: Server, account: Account, issue: str
) -> httpx.Response:
    return await client.post(
        f"{server.url}/api/v1/tools/run_block",
        json={"block_id": GH, "input_data": {"issue_url": issue}},
        headers={"Authorization": f"Bearer {account.api_key}"},
    )


async def query(deployment: Deployment, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(
        f"postgresql://postgres@127.0.0.1:{deployment.cluster.port}/blockpilot"
    )
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def statuses(deployment: Deployment, account: Account) -> dict[str, str]:
    rows = await query(
        deployment, "SELECT id, status FROM executions WHERE user_id = $1", account.user_id
    )
    return {row["id"]: row["status"] for row in rows}


async def eventually(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


# -- the tests -------------------------------------------------------------------------------


async def test_fifty_concurrent_runs_over_two_processes_refresh_once_and_respect_the_cap(
    deployment: Deployment,
) -> None:
    account = await deployment.new_account(
        "fifty", expires_in=-60
    )  # expired: every run needs a refresh
    deployment.provider.reset()
    deployment.github.reset()
    a, b = deployment.servers[:2]
    refused = 0

    async def call(i: int, client: httpx.AsyncClient) -> dict[str, Any]:
        nonlocal refused
        server = (a, b)[i % 2]
        while True:
            response = await run_block(client, server, account, FAST_ISSUE)
            if response.status_code != 429:
                assert response.status_code == 200, response.text
                return dict(response.json())
            refused += 1  # over the per-user cap: retry soon, as a client would
            await asyncio.sleep(random.uniform(0.02, 0.1))

    async with httpx.AsyncClient(timeout=60) as client:
        results = await asyncio.gather(*(call(i, client) for i in range(50)))

    assert [r["type"] for r in results] == ["block_output"] * 50, [
        r for r in results if r["type"] != "block_output"
    ]
    assert all(r["outputs"]["title"] == ["Scale me"] for r in results)
    assert deployment.provider.refresh_count == 1
    assert not deployment.provider.refresh_token_valid(
        account.refresh_token
    )  # spent once, never reused
    # The cap is per user across both processes: never more than MAX_CONCURRENT at GitHub.
    assert refused > 0
    assert 1 < deployment.github.max_in_flight <= MAX_CONCURRENT
    ids = {r["execution_id"] for r in results}
    await eventually(
        lambda: _all_completed(deployment, account, ids),
        10,
        "the 50 execution records to be completed",
    )
    owners = await query(
        deployment,
        "SELECT DISTINCT instance_id FROM executions WHERE user_id = $1",
        account.user_id,
    )
    assert len(owners) == 2  # both processes ran some


async def _all_completed(deployment: Deployment, account: Account, ids: set[str]) -> bool:
    found = await statuses(deployment, account)
    return all(found.get(i) == "completed" for i in ids)


async def test_a_killed_process_s_run_ends_interrupted_and_nothing_else_is_lost(
    deployment: Deployment,
) -> None:
    account = await deployment.new_account("killed", expires_in=3600)
    a, b = deployment.servers[:2]
    doomed = deployment.start_server("c")
    async with httpx.AsyncClient(timeout=60) as client:
        slow = asyncio.ensure_future(run_block(client, doomed, account, SLOW_ISSUE))

        async def running_on_c() -> list[asyncpg.Record]:
            return await query(
                deployment,
                "SELECT id, instance_id FROM executions WHERE user_id = $1 AND status = 'running'",
                account.user_id,
            )

        [victim] = await eventually(running_on_c, 20, "the slow run to start on server c")
        fast = [
            asyncio.ensure_future(run_block(client, (a, b)[i % 2], account, FAST_ISSUE))
            for i in range(6)
        ]
        doomed.process.send_signal(signal.SIGKILL)
        doomed.process.wait(timeout=10)
        killed_at = time.monotonic()
        with pytest.raises(httpx.HTTPError):
            await slow
        fast_results = [r.json() for r in await asyncio.gather(*fast)]
    assert all(r["type"] == "block_output" for r in fast_results), fast_results

    async def interrupted() -> bool:
        return (await statuses(deployment, account)).get(victim["id"]) == "interrupted"

    await eventually(interrupted, 15, "the killed process's run to become interrupted")
    # Not before its lease could have run out, yet soon after (heartbeats every lease / 3).
    assert time.monotonic() - killed_at < PROCESS_LEASE_SECONDS * 4 + 5
    done = {r["execution_id"] for r in fast_results}
    await eventually(
        lambda: _all_completed(deployment, account, done), 10, "the other runs to be completed"
    )
    final = await statuses(deployment, account)
    assert sorted(final.values()) == ["completed"] * 6 + ["interrupted"]
    for server in (a, b):
        assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200


async def test_postgres_restart_under_load_is_503_then_recovers_without_restarting(
    deployment: Deployment,
) -> None:
    account = await deployment.new_account("restart", expires_in=3600)
    a, b = deployment.servers[:2]
    seen: dict[int, int] = {}
    acknowledged: set[str] = set()
    tool_errors: list[str] = []
    stop = asyncio.Event()

    async def load(i: int, client: httpx.AsyncClient) -> None:
        server = (a, b)[i % 2]
        while not stop.is_set():
            try:
                response = await run_block(client, server, account, FAST_ISSUE)
            except httpx.HTTPError:
                seen[-1] = seen.get(-1, 0) + 1
                continue
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            if response.status_code == 200:
                body = response.json()
                if body["type"] == "block_output":
                    acknowledged.add(body["execution_id"])
                else:
                    tool_errors.append(body.get("code", "?"))
            elif response.status_code == 503:
                assert response.json()["error"]["code"] == "database_unavailable"
                assert response.headers.get("retry-after")
                await asyncio.sleep(0.1)

    async def ready(server: Server, client: httpx.AsyncClient) -> int:
        return (await client.get(f"{server.url}/readyz")).status_code

    async with httpx.AsyncClient(timeout=30) as client:
        workers = [asyncio.ensure_future(load(i, client)) for i in range(6)]
        await asyncio.sleep(1.0)
        await asyncio.to_thread(deployment.cluster.restart, "fast")
        await asyncio.sleep(1.0)
        await asyncio.to_thread(deployment.cluster.stop, "immediate")
        down_since = time.monotonic()
        readiness_down = {await ready(a, client), await ready(b, client)}
        while time.monotonic() - down_since < 3:
            await asyncio.sleep(0.2)
        assert readiness_down == {503}
        await asyncio.to_thread(deployment.cluster.start)

        async def both_ready() -> bool:
            return {await ready(a, client), await ready(b, client)} == {200}

        await eventually(both_ready, 30, "both servers to be ready again")
        before = len(acknowledged)
        await eventually(lambda: _more_than(acknowledged, before + 10), 30, "runs to succeed again")
        stop.set()
        await asyncio.gather(*workers)

    assert seen.get(500, 0) == 0, seen
    assert seen.get(503, 0) > 0, seen  # requests during the outage were told to come back
    assert set(tool_errors) <= {"internal_error"}, tool_errors  # a run cut by the outage itself
    # Every run a client was told had completed is in the database as completed.
    try:
        await eventually(
            lambda: _all_completed(deployment, account, acknowledged),
            30,
            "acknowledged runs to be completed",
        )
    except AssertionError:
        found = await statuses(deployment, account)
        wrong = {i: found.get(i) for i in acknowledged if found.get(i) != "completed"}
        errors = [
            line
            for s in (a, b)
            for line in s.log_tail(100000).splitlines()
            if "could not write" in line or "executions" in line
        ]
        raise AssertionError(
            f"acknowledged but not completed: {wrong}\n" + "\n".join(errors[-10:])
        ) from None


async def _more_than(values: set[str], count: int) -> bool:
    return len(values) > count


async def test_redis_down_fails_rotating_refresh_closed_and_recovers(
    deployment: Deployment,
) -> None:
    expired = await deployment.new_account("redis-expired", expires_in=-60)
    valid = await deployment.new_account("redis-valid", expires_in=3600)
    a, b = deployment.servers[:2]
    deployment.provider.reset()
    deployment.redis.stop()
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await run_block(client, a, expired, FAST_ISSUE)
            assert response.status_code == 200
            body = response.json()
            assert body["type"] == "error" and body["code"] == "credentials_unavailable"
            assert "Redis" in body["message"] and "rotates refresh tokens" in body["message"]
            assert deployment.provider.refresh_count == 0  # never refreshed without the lock
            assert deployment.provider.refresh_token_valid(expired.refresh_token)
            # Everything else works meanwhile (limits fall back to each process's own).
            for server in (a, b):
                ok = await run_block(client, server, valid, FAST_ISSUE)
                assert ok.status_code == 200 and ok.json()["type"] == "block_output", ok.text
                assert (await client.get(f"{server.url}/readyz")).status_code == 200
    finally:
        deployment.redis.start()  # same port; nobody restarts blockpilot
    async with httpx.AsyncClient(timeout=30) as client:
        results = await asyncio.gather(
            *(run_block(client, (a, b)[i % 2], expired, FAST_ISSUE) for i in range(6))
        )
    assert [r.json()["type"] for r in results] == ["block_output"] * 6
    assert deployment.provider.refresh_count == 1


# -- at-most-once across processes (docs/approvals.md) --------------------------------------


async def _call_until_admitted(
    client: httpx.AsyncClient, server: Server, account: Account, headers: dict[str, str]
) -> dict[str, Any]:
    while True:
        response = await client.post(
            f"{server.url}/api/v1/tools/run_block",
            json={"block_id": GH, "input_data": {"issue_url": FAST_ISSUE}},
            headers={"Authorization": f"Bearer {account.api_key}", **headers},
        )
        if response.status_code != 429:  # over the per-user cap: retry, as a client would
            assert response.status_code == 200, response.text
            return dict(response.json())
        await asyncio.sleep(random.uniform(0.02, 0.1))


async def _executions(deployment: Deployment, account: Account) -> list[Any]:
    return await query(
        deployment, "SELECT id, status FROM executions WHERE user_id = $1", account.user_id
    )


async def test_twenty_concurrent_calls_with_one_key_over_two_processes_run_once(
    deployment: Deployment,
) -> None:
    account = await deployment.new_account("idem", expires_in=3600)
    a, b = deployment.servers[:2]
    key = {"Idempotency-Key": "create-issue-42"}
    async with httpx.AsyncClient(timeout=60) as client:
        answers = await asyncio.gather(
            *(_call_until_admitted(client, (a, b)[i % 2], account, key) for i in range(20))
        )
    assert {r["type"] for r in answers} == {"block_output"}, [
        r for r in answers if r["type"] != "block_output"
    ]
    assert len({r["execution_id"] for r in answers}) == 1
    assert sum(not r["replayed"] for r in answers) == 1
    rows = await _executions(deployment, account)
    assert [row["status"] for row in rows] == ["completed"]


async def test_an_approval_survives_a_sigkill_and_runs_once(deployment: Deployment) -> None:
    account = await deployment.new_account("approver", expires_in=3600)
    pilot = await Pilot.open(deployment.pilot_settings())
    try:
        await pilot.policies.add(
            PolicyRule(Selector.EFFECT, "read", Decision.ASK, user_id=account.user_id)
        )
    finally:
        await pilot.close()
    doomed = deployment.start_server("approvals")
    survivor = deployment.servers[1]
    auth = {"Authorization": f"Bearer {account.api_key}"}
    async with httpx.AsyncClient(timeout=60) as client:
        asked = await _call_until_admitted(client, doomed, account, {})
        assert asked["type"] == "review_required"
        approved = await client.post(
            f"{doomed.url}/api/v1/reviews/{asked['review_id']}/approve", headers=auth
        )
        assert approved.status_code == 200 and approved.json()["status"] == "approved"
        doomed.process.send_signal(signal.SIGKILL)
        doomed.process.wait(timeout=15)

        ran = await _call_until_admitted(client, survivor, account, {})
        assert ran["type"] == "block_output", ran
        again = await _call_until_admitted(client, survivor, account, {})
        assert again["type"] == "review_required" and again["review_id"] != asked["review_id"]
    rows = await _executions(deployment, account)
    assert [row["status"] for row in rows] == ["completed"]
