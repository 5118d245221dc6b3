"""Fixtures of the adversarial suite: session-wide log capture for the canary sweep,
canary servers on loopback (and on a private address in a network namespace, where the
machine allows one), and Pilots whose HTTP client has a scripted resolver."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from tests.security.sec_helpers import (  # noqa: F401 - canary_server: the `canary` fixture of tests/net
    CANARIES,
    LocalServer,
    canary_server,
    guard_pilot,
    guarded_client,
)


@pytest.fixture(scope="session", autouse=True)
def _canary_sweep() -> Iterator[None]:
    """The canary sweep (docs/security.md), when the session ends.

    Every canary secret the suite planted (as API keys, OAuth tokens, passwords and
    host-scoped headers) is looked for — raw, URL-encoded and base64 in its common
    spellings — in every log record captured during the security tests, every response,
    exception text and CLI/subprocess output the tests registered, every file in the data
    folders the services used (database, WAL, workspace blobs, crash logs) and every column
    of every database row except the encrypted ``credentials.secret``. It must be nowhere.
    Under pytest-xdist each worker sweeps what its own tests planted and saw.
    """
    yield
    CANARIES.stop_capture()
    if not CANARIES.canaries:
        return
    if not CANARIES.logs.texts:
        pytest.fail("canaries were planted but no log record was captured: the capture broke")
    found = CANARIES.sweep()
    if found:
        pytest.fail("canary secrets leaked:\n" + "\n".join(found[:50]), pytrace=False)


@pytest.fixture(autouse=True)
def _capture_every_log_record() -> Iterator[None]:
    """Every log record of a security test, its fixtures' teardown included, is kept for
    the sweep (the rest of the session logs as usual)."""
    CANARIES.start_capture()
    try:
        yield
    finally:
        CANARIES.stop_capture()


@pytest.fixture(autouse=True)
def _watch_home(home: Path) -> None:
    """Whatever a test's service writes to its data folder is swept for canaries."""
    CANARIES.watch_home(home)


@pytest.fixture
def public() -> Iterator[LocalServer]:
    """A loopback server that plays a public web site (reached through FakeInternet)."""
    with LocalServer() as server:
        yield server


@pytest.fixture
async def open_pilot(
    settings_factory: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Any]]:
    """Open Pilots on the test's home; ``open_pilot(resolver=..., routes=..., **settings)``
    gives one whose block HTTP goes through a guarded client with that resolver and fake
    internet (loopback stays real, so a guard bug reaches the canary)."""
    opened: list[Pilot] = []

    async def make(
        *,
        resolver: Any = None,
        routes: dict[tuple[str, int], int] | None = None,
        allowed: tuple[str, ...] = (),
        limits: dict[str, Any] | None = None,
        registry: Any = None,
        **overrides: Any,
    ) -> Pilot:
        pilot = await Pilot.open(settings_factory(**overrides), registry=registry)
        opened.append(pilot)
        client, _ = guarded_client(resolver, routes, allowed=allowed, **(limits or {}))
        await guard_pilot(pilot, client)
        return pilot

    yield make
    for pilot in opened:
        await pilot.close()


# --------------------------------------------------------------------------- netns canary


@dataclass
class NamespaceCanary:
    """An HTTP server on a private address inside a network namespace, counting hits."""

    address: str
    port: int
    hits_file: Path

    @property
    def hits(self) -> int:
        try:
            return len(self.hits_file.read_text().splitlines())
        except FileNotFoundError:
            return 0


_NETNS_SERVER = """
import http.server, sys
hits = sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def _any(self):
        with open(hits, "a") as f:
            f.write(self.command + " " + self.path + "\\n")
        body = b"netns canary"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _any
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=20)


@pytest.fixture(scope="session")
def netns_canary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NamespaceCanary]:
    """A canary on 10.213.x.2 in a fresh network namespace reachable over a veth pair.

    Skipped cleanly where ``ip netns`` cannot be used (no root, no iproute2, a sandbox).
    """
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (ip) is not installed")
    tag = f"bp{os.getpid() % 100000}"
    ns, outer, inner = f"{tag}ns", f"{tag}a", f"{tag}b"
    in_use = _run("ip", "-o", "addr", "show").stdout
    octet = next(
        (
            n
            for n in [(os.getpid() + i) % 200 + 20 for i in range(200)]
            if f"10.213.{n}." not in in_use
        ),
        None,
    )
    if octet is None:
        pytest.skip("no free 10.213.x.0/24 subnet for the namespace canary")
    host_ip, ns_ip = f"10.213.{octet}.1", f"10.213.{octet}.2"
    if _run("ip", "netns", "add", ns).returncode != 0:
        pytest.skip("cannot create a network namespace here (ip netns add failed)")
    process: subprocess.Popen[bytes] | None = None
    try:
        for command in (
            ("ip", "link", "add", outer, "type", "veth", "peer", "name", inner),
            ("ip", "link", "set", inner, "netns", ns),
            ("ip", "addr", "add", f"{host_ip}/24", "dev", outer),
            ("ip", "link", "set", outer, "up"),
            ("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ns_ip}/24", "dev", inner),
            ("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up"),
            ("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"),
        ):
            result = _run(*command)
            if result.returncode != 0:
                pytest.skip(f"network namespace setup failed: {' '.join(command)}: {result.stderr}")
        hits = tmp_path_factory.mktemp("netns") / "hits.log"
        port = 18080
        process = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns,
                sys.executable,
                "-c",
                _NETNS_SERVER,
                ns_ip,
                str(port),
                str(hits),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        canary = NamespaceCanary(ns_ip, port, hits)
        import socket

        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection((ns_ip, port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.skip("the namespace canary server did not start")
                time.sleep(0.05)
        yield canary
    finally:
        if process is not None:
            process.kill()
            process.wait(5)
        _run("ip", "link", "del", outer)
        _run("ip", "netns", "del", ns)
