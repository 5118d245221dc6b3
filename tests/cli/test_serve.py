"""``blockpilot serve`` as a real process: ready, serves the API, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from blockpilot.credentials.crypto import KeyRing

SCRIPT = Path(sys.executable).with_name("blockpilot")
CALCULATOR_ID = "b1ab9b19-67a6-406d-abf5-2dba76d00c79"
EXIT_CONFIGURATION = 5


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPILOT_")}
    return {
        **clean,
        "BLOCKPILOT_HOME": str(tmp_path / "home"),
        "BLOCKPILOT_ENCRYPTION_KEYS": KeyRing.generate_key(),
    }


def blockpilot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, env: dict[str, str], port: int, stderr: Path) -> None:
        self.base_url = f"http://127.0.0.1:{port}"
        self.stderr_path = stderr
        with stderr.open("wb") as log:  # a file, not a pipe: a full pipe would block the server
            self.process = subprocess.Popen(
                [str(SCRIPT), "serve", "--port", str(port)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,
            )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.stderr()
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"not ready within {timeout}s:\n{self.stderr()}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


StartServer = Callable[..., Server]


@pytest.fixture
def start(env: dict[str, str], tmp_path: Path) -> Iterator[StartServer]:
    started: list[Server] = []

    def make(port: int | None = None) -> Server:
        server = Server(env, port or free_port(), tmp_path / f"stderr-{len(started)}.log")
        started.append(server)
        return server

    yield make
    for server in started:
        server.kill()


def assert_clean_log(stderr: str, *secrets: str) -> list[dict[str, object]]:
    """Every stderr line is a JSON log record; none is an error; no traceback, no secret."""
    assert "Traceback" not in stderr
    records = [json.loads(line) for line in stderr.splitlines()]
    assert not [r for r in records if r["level"] in ("error", "critical")], stderr
    for secret in secrets:
        assert secret not in stderr
    return records


@pytest.mark.slow
def test_serve_answers_then_stops_cleanly_on_sigterm(
    env: dict[str, str], start: StartServer
) -> None:
    created = blockpilot(env, "users", "create", "alice")
    assert created.returncode == 0, created.stderr
    api_key = json.loads(created.stdout)["api_key"]

    server = start()
    server.wait_ready()
    auth = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=server.base_url, headers=auth, timeout=30) as client:
        found = client.post("/api/v1/tools/find_block", json={"query": "add two numbers"})
        assert found.status_code == 200, found.text
        assert found.json()["type"] == "block_list"
        assert CALCULATOR_ID in [b["id"] for b in found.json()["blocks"]]
        ran = client.post(
            "/api/v1/tools/run_block",
            json={"block_id": CALCULATOR_ID, "input_data": {"operation": "add", "a": 2, "b": 3}},
        )
        assert ran.json()["outputs"] == {"result": [5.0]}
        assert client.get("/openapi.json").json()["info"]["title"] == "blockpilot"

    assert server.stop(signal.SIGTERM) == 0
    assert server.process.stdout is not None and server.process.stdout.read() == b""
    records = assert_clean_log(server.stderr(), api_key)
    messages = [r["message"] for r in records]
    assert "Application shutdown complete." in messages
    assert any(r.get("path") == "/api/v1/tools/run_block" for r in records)

    # The Pilot was closed: the run's final state was written, not left to read as interrupted.
    listed = blockpilot(env, "executions", "list", "--user", "alice", "--json")
    assert [e["status"] for e in json.loads(listed.stdout)] == ["completed"], listed.stderr


@pytest.mark.slow
def test_ctrl_c_is_a_clean_stop_too(start: StartServer) -> None:
    server = start()
    server.wait_ready()
    assert server.stop(signal.SIGINT) == 0
    assert_clean_log(server.stderr())


@pytest.mark.slow
def test_a_port_in_use_is_one_error_line_and_exit_5(start: StartServer) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = start(taken.getsockname()[1])
        code = server.process.wait(30)
    stderr = server.stderr()
    assert code == EXIT_CONFIGURATION
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1].startswith("Error: The server could not start on 127.0.0.1:")


@pytest.mark.slow
def test_a_wrong_encryption_key_fails_before_listening(
    env: dict[str, str], start: StartServer
) -> None:
    assert blockpilot(env, "users", "create", "bob").returncode == 0
    added = blockpilot(
        env,
        "credentials", "add", "--user", "bob", "--json",
        '{"provider": "openai", "type": "api_key", "api_key": "sk-0123456789abcdef"}',
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    env["BLOCKPILOT_ENCRYPTION_KEYS"] = KeyRing.generate_key()
    server = start()
    code = server.process.wait(30)
    stderr = server.stderr()
    assert code == EXIT_CONFIGURATION
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1].startswith("Error: The encryption key cannot decrypt")
