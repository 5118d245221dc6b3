"""SSRF through every block that takes a destination, through every entry point.

Security-notes §1.1: every payload runs through ``run_block`` (not only the guarded client,
which ``tests/net`` covers): the outcome must be the typed "destination blocked" refusal
and the canary servers must count zero hits. Public hosts are played by local servers that
a fake network backend routes public addresses to; loopback connects for real, so a hole
in the guard really reaches the canary.
"""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from mcp import Client
from typer.testing import CliRunner

from blockpilot.api import create_app
from blockpilot.cli.app import app as cli_app
from blockpilot.credentials.hosts import HostPattern
from blockpilot.errors import InvalidInputError
from blockpilot.mcp import build_mcp_server
from blockpilot.net import DestinationPolicy, GuardedHTTPClient
from blockpilot.pilot import Pilot
from tests.net.net_servers import redirect, reply
from tests.security.sec_helpers import (
    AUTH_WEB_REQUEST_ID,
    CANARIES,
    EMAIL_ID,
    GITHUB_ISSUE_ID,
    PUBLIC_IP,
    WEB_REQUEST_ID,
    LocalServer,
    StubResolver,
    blocked_cause,
    guard_pilot,
    tool_json,
)

# --------------------------------------------------------------------------- payloads

# {p} is the loopback canary's port. Every one of these must be refused.
LOOPBACK = [
    # numeric encodings of 127.0.0.1 (inet_aton forms)
    "http://127.0.0.1:{p}/",
    "http://127.1:{p}/",
    "http://127.0.1:{p}/",
    "http://127.1.2.3:{p}/",
    "http://2130706433:{p}/",
    "http://2130706433.:{p}/",
    "http://0x7f000001:{p}/",
    "http://0x7f000001.:{p}/",
    "http://0x7f.1:{p}/",
    "http://0x7F.0.0.1:{p}/",
    "http://0x7f.0x0.0x0.0x1:{p}/",
    "http://0177.0.0.1:{p}/",
    "http://0177.1:{p}/",
    "http://017700000001:{p}/",
    "http://127.000.000.001:{p}/",
    "http://127.0.0.1.:{p}/",
    "http://0.0.0.0:{p}/",
    "http://0:{p}/",
    "http://00:{p}/",
    "http://0x0:{p}/",
    "http://127.0.0.1:0{p}/",
    "https://127.0.0.1:{p}/",
    "HTTP://127.0.0.1:{p}/",
    # IPv6 and IPv4-mapped / translated / embedded forms
    "http://[::1]:{p}/",
    "http://[0:0:0:0:0:0:0:1]:{p}/",
    "http://[::]:{p}/",
    "http://[::ffff:127.0.0.1]:{p}/",
    "http://[::ffff:7f00:1]:{p}/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]:{p}/",
    "http://[::ffff:0:127.0.0.1]:{p}/",
    "http://[::127.0.0.1]:{p}/",
    "http://[64:ff9b::7f00:1]:{p}/",
    "http://[64:ff9b::127.0.0.1]:{p}/",
    "http://[2002:7f00:1::]:{p}/",
    "http://[fe80::1%25eth0]:{p}/",
    "http://[fe80::1%25lo]:{p}/",
    "http://[::ffff:127.0.0.1%25lo]:{p}/",
    # localhost and its variants
    "http://localhost:{p}/",
    "http://localhost.:{p}/",
    "http://LOCALHOST:{p}/",
    "http://LocalHost.:{p}/x?y#z",
    "http://anything.localhost:{p}/",
    "http://a.b.localhost.:{p}/",
    "http://localhost\u3002:{p}/",
    "http://\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3:{p}/",
    "http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54:{p}/",
    # Unicode digits and dots
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{p}/",
    "http://127\u30020\u30020\u30021:{p}/",
    "http://127\uff0e0\uff0e0\uff0e1:{p}/",
    # userinfo tricks
    "http://user:pass@127.0.0.1:{p}/",
    "http://example.com@127.0.0.1:{p}/",
    "http://example.com:80@127.0.0.1:{p}/",
    "http://@127.0.0.1:{p}/",
    "http://evil.example\\@127.0.0.1:{p}/",
    "http://127.0.0.1:{p}#@example.com/",
    "http://127.0.0.1:{p}?@example.com/",
    # whitespace and control characters
    "http://127.0.0.1\t:{p}/",
    "http://127.0.0.1:{p}\n/",
    "http://127.0.0.1\r\n:{p}/",
    "http://12\t7.0.0.1:{p}/",
    "\thttp://127.0.0.1:{p}/",
    # malformed URLs that name loopback somewhere
    "http:127.0.0.1:{p}/",
    "http:/127.0.0.1:{p}/",
    "http:\\\\127.0.0.1:{p}/",
    "//127.0.0.1:{p}/",
    "http://xn--localhost-:{p}/",
    "http://xn--:{p}/",
    # names that resolve to internal addresses (the stub resolver below)
    "http://internal.test:{p}/",
    "http://mixed.test:{p}/",
    "http://mixed-first.test:{p}/",
    "http://v6.test:{p}/",
    "http://mapped.test:{p}/",
    "http://nat64.test:{p}/",
    "http://rebind.test:{p}/",
    # non-http schemes
    "file:///etc/passwd",
    "file://127.0.0.1/etc/passwd",
    "gopher://127.0.0.1:{p}/_GET%20/",
    "dict://127.0.0.1:{p}/info",
    "ftp://127.0.0.1:{p}/",
    "sftp://127.0.0.1:{p}/",
    "tftp://127.0.0.1:{p}/x",
    "ldap://127.0.0.1:{p}/",
    "ws://127.0.0.1:{p}/",
    "wss://127.0.0.1:{p}/",
    "jar:http://127.0.0.1:{p}/x.jar!/",
    "netdoc:///etc/passwd",
    "data:text/plain;base64,aGk=",
    "javascript:fetch('http://127.0.0.1:{p}/')",
]

# Internal ranges beyond loopback: refused whatever the port (nothing listens there).
INTERNAL = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[fd00:ec2::254]/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://100.64.0.1/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://198.18.0.1/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://[fc00::1]/",
    "http://[fe80::1]/",
    "http://[ff02::1]/",
    "http://[2001:db8::1]/",
]

# These do not name the canary at all (the fragment/query hides "@127.0.0.1"): they must go
# to the public host they really name, never to the canary.
ELSEWHERE = [
    "http://public.test#@127.0.0.1:{p}/",
    "http://public.test?@127.0.0.1:{p}/",
    "http://public.test/#http://127.0.0.1:{p}/",
    "http://public.test/?next=http://127.0.0.1:{p}/",
]

SMTP_HOSTS = [
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "127.0.0.1.",
    "0.0.0.0",
    "0",
    "::1",
    "[::1]",
    "::ffff:127.0.0.1",
    "[::ffff:7f00:1]",
    "::ffff:0:127.0.0.1",
    "64:ff9b::7f00:1",
    "localhost",
    "localhost.",
    "LOCALHOST",
    "smtp.localhost",
    "\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54",
    "\uff11\uff12\uff17.\uff10.\uff10.\uff11",
    "169.254.169.254",
    "10.0.0.1",
    "192.168.1.1",
    "internal.test",
    "mixed.test",
    "v6.test",
    "metadata.google.internal",
    "127.0.0.1:25",
    "user@127.0.0.1",
    "127.0.0.1\n",
    "127.0.0.1 x",
    "smtp://127.0.0.1",
    "*.localhost",
]

RESOLVER = {
    "public.test": [PUBLIC_IP],
    "internal.test": ["127.0.0.1"],
    "mixed.test": [PUBLIC_IP, "127.0.0.1"],
    "mixed-first.test": ["127.0.0.1", PUBLIC_IP],
    "v6.test": ["::1"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "nat64.test": ["64:ff9b::7f00:1"],
    "rebind.test": [["127.0.0.1"], [PUBLIC_IP]],
    "metadata.google.internal": ["169.254.169.254"],
}

PAYLOADS_TRIED = len(LOOPBACK) + len(INTERNAL) + len(ELSEWHERE) + len(SMTP_HOSTS)


def _resolver() -> StubResolver:
    return StubResolver({k: v for k, v in RESOLVER.items()})


class SMTPCanary:
    """A TCP listener on loopback that counts connections (and never speaks SMTP)."""

    def __init__(self) -> None:
        owner = self
        self.connections = 0

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner.connections += 1

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def smtp_canary() -> Iterator[SMTPCanary]:
    canary = SMTPCanary()
    yield canary
    canary.close()


async def _user(pilot: Pilot, name: str = "mallory") -> str:
    user, _ = await pilot.users.create(name)
    return user.id


async def _run(pilot: Pilot, user_id: str, block_id: str, data: dict[str, Any]) -> dict[str, Any]:
    response = await pilot.call_tool(
        "run_block", {"block_id": block_id, "input_data": data}, user_id=user_id
    )
    return tool_json(response)


def _credential_host(url: str) -> str | None:
    """The host pattern a person would store for *url* (None if it is no valid pattern)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        pattern = f"{host}:{parts.port}" if parts.port else host
        if ":" in host and not host.startswith("["):
            pattern = f"[{host}]:{parts.port}" if parts.port else host
        return str(HostPattern.parse(pattern))
    except (ValueError, InvalidInputError):
        return None


def _refused(data: dict[str, Any]) -> bool:
    return blocked_cause(data) == "destination_blocked"


# --------------------------------------------------------------------------- direct payloads


@pytest.mark.parametrize("block", ["web", "authenticated_web"])
async def test_every_payload_is_blocked_and_the_canary_is_never_hit(
    block: str, open_pilot: Any, canary: LocalServer, public: LocalServer
) -> None:
    pilot = await open_pilot(resolver=_resolver(), routes={(PUBLIC_IP, 80): public.port})
    user_id = await _user(pilot)
    canary_value = CANARIES.new("hdrc")
    wrong: list[str] = []
    reached_guard = 0
    for template in [*LOOPBACK, *INTERNAL]:
        url = template.format(p=canary.port)
        data = {"url": url, "method": "GET"}
        block_id = WEB_REQUEST_ID
        if block == "authenticated_web":
            block_id = AUTH_WEB_REQUEST_ID
            pattern = _credential_host(url)
            if pattern is not None:
                meta = await pilot.add_credentials(
                    user_id,
                    {
                        "provider": "http",
                        "type": "host_scoped",
                        "host": pattern,
                        "headers": {"X-Api-Key": canary_value},
                    },
                )
                data["credentials"] = {"id": meta.id, "provider": "http", "type": "host_scoped"}
        outcome = await _run(pilot, user_id, block_id, data)
        if _refused(outcome):
            reached_guard += 1
            assert "Destination blocked" in outcome["message"], outcome
        elif not (
            block == "authenticated_web" and outcome["type"] in ("setup_requirements", "error")
        ):
            wrong.append(
                f"{url!r}: {outcome['type']} {outcome.get('code')} {outcome['message'][:120]}"
            )
        if canary.hits:
            wrong.append(f"{url!r} REACHED THE CANARY")
            canary.hits.clear()
    assert not wrong, "\n".join(wrong)
    assert canary.hits == [] and public.hits == []
    if block == "authenticated_web":
        # Most payloads name a host a credential can be stored for, so the guard is reached.
        assert reached_guard > len(LOOPBACK) // 2
    else:
        assert reached_guard == len(LOOPBACK) + len(INTERNAL)
    records = await pilot.executions.list(user_id, limit=500)
    assert all(r.status == "failed" for r in records)


async def test_fragment_and_query_tricks_go_to_the_named_host_only(
    open_pilot: Any, canary: LocalServer, public: LocalServer
) -> None:
    pilot = await open_pilot(resolver=_resolver(), routes={(PUBLIC_IP, 80): public.port})
    user_id = await _user(pilot)
    for template in ELSEWHERE:
        outcome = await _run(
            pilot, user_id, WEB_REQUEST_ID, {"url": template.format(p=canary.port), "method": "GET"}
        )
        assert outcome["type"] == "block_output", outcome
    assert canary.hits == []
    assert len(public.hits) == len(ELSEWHERE)
    assert all(hit.headers["host"] == "public.test" for hit in public.hits)


async def test_github_issue_urls_are_never_fetched(
    open_pilot: Any, canary: LocalServer, public: LocalServer
) -> None:
    """The issue URL is parsed, never requested: whatever it names, only the API host is asked."""
    pilot = await open_pilot(resolver=_resolver(), routes={(PUBLIC_IP, 443): public.port})
    user_id = await _user(pilot)
    token = CANARIES.new("ghp")
    await pilot.add_credentials(
        user_id, {"provider": "github", "type": "api_key", "api_key": token}
    )
    wrong = []
    for template in [*LOOPBACK, *INTERNAL, *ELSEWHERE]:
        url = template.format(p=canary.port)
        for issue_url in (
            url,
            url.rstrip("/") + "/repos/o/r/issues/1",
            url.rstrip("/") + "/o/r/issues/1",
        ):
            outcome = await _run(pilot, user_id, GITHUB_ISSUE_ID, {"issue_url": issue_url})
            if (
                outcome["type"] != "error"
                or "issue_url must be a GitHub issue URL" not in outcome["message"]
            ):
                wrong.append(f"{issue_url!r}: {outcome['type']} {outcome['message'][:100]}")
    assert not wrong, "\n".join(wrong)
    assert canary.hits == [] and public.hits == []


async def test_smtp_server_payloads_are_blocked_before_connecting(
    open_pilot: Any, smtp_canary: SMTPCanary
) -> None:
    pilot = await open_pilot(resolver=_resolver())
    user_id = await _user(pilot)
    password = CANARIES.new("smtppw")
    wrong = []
    for host in SMTP_HOSTS:
        # SMTP credentials are bound to their server: store one for each payload host, so
        # the guard (not the binding) is what stops it. A host no credential can be bound
        # to never receives one (setup requirements).
        try:
            await pilot.add_credentials(
                user_id,
                {
                    "provider": "smtp",
                    "type": "user_password",
                    "username": "mallory",
                    "password": password,
                    "host": host,
                },
            )
            unbindable = False
        except InvalidInputError:
            unbindable = True
        outcome = await _run(
            pilot,
            user_id,
            EMAIL_ID,
            {
                "to_email": "a@example.com",
                "subject": "s",
                "body": "b",
                "smtp_server": host,
                "smtp_port": smtp_canary.port,
            },
        )
        cause = blocked_cause(outcome)
        # A name nobody resolves is a network error; everything else is the typed refusal.
        if unbindable and outcome["type"] == "setup_requirements":
            continue
        if cause != "destination_blocked" and outcome["type"] != "input_validation_error":
            wrong.append(f"{host!r}: {outcome['type']} {cause} {outcome['message'][:100]}")
    assert not wrong, "\n".join(wrong)
    assert smtp_canary.connections == 0


# --------------------------------------------------------------------------- redirects


REDIRECT_TARGETS = [
    "http://127.0.0.1:{p}/",
    "http://[::1]:{p}/",
    "http://localhost:{p}/",
    "http://2130706433:{p}/",
    "http://[::ffff:127.0.0.1]:{p}/",
    "http://internal.test:{p}/",
    "//127.0.0.1:{p}/",
    "http://169.254.169.254/latest/meta-data/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{p}/_x",
    "http://user:pw@127.0.0.1:{p}/",
    "http://xn--localhost-:{p}/",
]


@pytest.mark.parametrize("status", list(range(300, 309)))
async def test_redirects_of_every_3xx_status_are_rechecked_each_hop(
    status: int, open_pilot: Any, canary: LocalServer, public: LocalServer
) -> None:
    pilot = await open_pilot(resolver=_resolver(), routes={(PUBLIC_IP, 80): public.port})
    user_id = await _user(pilot)
    followed = status in (301, 302, 303, 307, 308)
    wrong = []
    for index, template in enumerate(REDIRECT_TARGETS):
        path = f"/r{index}"
        public.route(path, redirect(status, template.format(p=canary.port)))
        for method in ("GET", "POST"):
            outcome = await _run(
                pilot,
                user_id,
                WEB_REQUEST_ID,
                {"url": f"http://public.test{path}", "method": method, "body": {"x": 1}},
            )
            if followed and not _refused(outcome):
                wrong.append(
                    f"{status} {method} -> {template}: {outcome['type']} {outcome['message'][:100]}"
                )
            if not followed and outcome["type"] != "block_output":
                wrong.append(f"{status} {method} (not a redirect) -> {outcome['message'][:100]}")
    assert not wrong, "\n".join(wrong)
    assert canary.hits == []
    assert len(public.hits) == 2 * len(REDIRECT_TARGETS)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_relative_redirect_after_dns_rebinding_is_refused(
    status: int, open_pilot: Any, canary: LocalServer, public: LocalServer
) -> None:
    """public.test answers a public address, then loopback: a relative Location (same host)
    is resolved again on the next hop and refused, never connected to loopback."""
    resolver = StubResolver({"flip.test": [[PUBLIC_IP], ["127.0.0.1"]]})
    pilot = await open_pilot(resolver=resolver, routes={(PUBLIC_IP, canary.port): public.port})
    user_id = await _user(pilot)
    public.route("/start", redirect(status, "/next"))
    outcome = await _run(
        pilot,
        user_id,
        WEB_REQUEST_ID,
        {"url": f"http://flip.test:{canary.port}/start", "method": "GET"},
    )
    assert _refused(outcome), outcome
    assert [h.path for h in public.hits] == ["/start"]
    assert canary.hits == []
    assert len(resolver.calls) == 2  # every hop resolved (and checked) on its own


async def test_rebinding_between_check_and_connect_cannot_reach_loopback(
    open_pilot: Any, canary: LocalServer, public: LocalServer
) -> None:
    """A resolver that answers public first and loopback afterwards: the connection uses the
    address that was checked (pinned), so loopback is never connected to."""
    resolver = StubResolver({"rebind.test": [[PUBLIC_IP], ["127.0.0.1"], ["127.0.0.1"]]})
    pilot = await open_pilot(resolver=resolver, routes={(PUBLIC_IP, canary.port): public.port})
    user_id = await _user(pilot)
    outcome = await _run(
        pilot,
        user_id,
        WEB_REQUEST_ID,
        {"url": f"http://rebind.test:{canary.port}/", "method": "GET"},
    )
    assert outcome["type"] == "block_output", outcome
    again = await _run(
        pilot,
        user_id,
        WEB_REQUEST_ID,
        {"url": f"http://rebind.test:{canary.port}/", "method": "GET"},
    )
    assert _refused(again), again
    assert len(public.hits) == 1 and canary.hits == []


async def test_overlong_redirect_chains_stop_with_a_bounded_error(
    open_pilot: Any, canary: LocalServer, public: LocalServer
) -> None:
    pilot = await open_pilot(resolver=_resolver(), routes={(PUBLIC_IP, 80): public.port})
    user_id = await _user(pilot)
    for hop in range(50):
        public.route(f"/hop{hop}", redirect(302, f"/hop{hop + 1}"))
    public.route("/hop50", redirect(302, f"http://127.0.0.1:{canary.port}/"))
    outcome = await _run(
        pilot, user_id, WEB_REQUEST_ID, {"url": "http://public.test/hop0", "method": "GET"}
    )
    assert outcome["type"] == "error" and outcome["details"] == {"cause": "network_error"}, outcome
    assert "Too many redirects (max 5)" in outcome["message"]
    assert len(public.hits) == 6
    assert canary.hits == []


# --------------------------------------------------------------------------- other front doors

FRONT_DOOR_PAYLOADS = [
    "http://127.0.0.1:{p}/",
    "http://2130706433:{p}/",
    "http://[::ffff:127.0.0.1]:{p}/",
    "http://localhost.:{p}/",
    "http://user:pw@127.0.0.1:{p}/",
    "http://xn--localhost-:{p}/",
    "file:///etc/passwd",
    "http://169.254.169.254/",
]


async def test_http_api_refuses_the_payloads(open_pilot: Any, canary: LocalServer) -> None:
    import httpx

    pilot = await open_pilot(resolver=_resolver())
    _, key = await pilot.users.create("mallory")
    app = create_app(pilot)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}"},
    ) as client:
        for template in FRONT_DOOR_PAYLOADS:
            response = await client.post(
                "/api/v1/tools/run_block",
                json={
                    "block_id": WEB_REQUEST_ID,
                    "input_data": {"url": template.format(p=canary.port), "method": "GET"},
                },
            )
            assert response.status_code == 200
            data = CANARIES.saw("http api", response.json())
            assert _refused(data), data
    assert canary.hits == []


async def test_mcp_refuses_the_payloads(open_pilot: Any, canary: LocalServer) -> None:
    pilot = await open_pilot(resolver=_resolver())
    user_id = await _user(pilot)
    async with Client(build_mcp_server(pilot, user_id)) as client:
        for template in FRONT_DOOR_PAYLOADS:
            result = await client.call_tool(
                "run_block",
                {
                    "block_id": WEB_REQUEST_ID,
                    "input_data": {"url": template.format(p=canary.port), "method": "GET"},
                },
            )
            data = CANARIES.saw("mcp", result.structured_content)
            assert result.is_error is True
            assert _refused(data), data
    assert canary.hits == []


def test_cli_refuses_the_payloads(
    home: Any, canary: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI opens its own Pilot (system resolver, no allowlist): literal payloads only."""
    import os

    from blockpilot.credentials.crypto import KeyRing

    for name in list(os.environ):
        if name.startswith("BLOCKPILOT_"):
            monkeypatch.delenv(name)
    env = {"BLOCKPILOT_HOME": str(home), "BLOCKPILOT_ENCRYPTION_KEYS": KeyRing.generate_key()}
    runner = CliRunner()
    assert runner.invoke(cli_app, ["users", "create", "mallory"], env=env).exit_code == 0
    for template in FRONT_DOOR_PAYLOADS:
        args = {
            "block_id": WEB_REQUEST_ID,
            "input_data": {"url": template.format(p=canary.port), "method": "GET"},
        }
        result = runner.invoke(
            cli_app, ["tool", "run_block", "--user", "mallory", "--args", json.dumps(args)], env=env
        )
        CANARIES.saw("cli stdout", result.stdout)
        CANARIES.saw("cli stderr", result.stderr)
        assert result.exit_code == 7, result.stdout + result.stderr  # block failed
        assert _refused(json.loads(result.stdout)), result.stdout
        run = runner.invoke(
            cli_app,
            [
                "run",
                "SendWebRequestBlock",
                "--user",
                "mallory",
                "--input",
                json.dumps(args["input_data"]),
            ],
            env=env,
        )
        assert run.exit_code == 7, run.stdout + run.stderr
        assert "Destination blocked" in run.stdout + run.stderr
    assert canary.hits == []


# --------------------------------------------------------------------------- private network


async def test_private_address_canary_in_a_network_namespace(
    netns_canary: Any, open_pilot: Any, public: LocalServer
) -> None:
    """A real non-loopback private host (10.x in a namespace): blocked in every spelling,
    directly, by name and by redirect; an exempt client proves the canary is reachable."""
    address, port = netns_canary.address, netns_canary.port
    before = netns_canary.hits
    a, b, c, d = (int(x) for x in address.split("."))
    number = (a << 24) | (b << 16) | (c << 8) | d
    resolver = StubResolver({"private.test": [address], "public.test": [PUBLIC_IP]})
    pilot = await open_pilot(resolver=resolver, routes={(PUBLIC_IP, 80): public.port})
    user_id = await _user(pilot)
    public.route("/to-private", redirect(307, f"http://{address}:{port}/"))
    urls = [
        f"http://{address}:{port}/",
        f"http://{number}:{port}/",
        f"http://{hex(number)}:{port}/",
        f"http://0{a:o}.{b}.{c}.{d}:{port}/",
        f"http://[::ffff:{address}]:{port}/",
        f"http://private.test:{port}/",
        "http://public.test/to-private",
    ]
    for url in urls:
        outcome = await _run(pilot, user_id, WEB_REQUEST_ID, {"url": url, "method": "GET"})
        assert _refused(outcome), (url, outcome)
    assert netns_canary.hits == before
    # Positive control: the same canary is reachable when the operator exempts it.
    exempt = DestinationPolicy.from_host_list([f"{address}:{port}"])
    await guard_pilot(pilot, GuardedHTTPClient(exempt, resolver=resolver))  # the real network
    outcome = await _run(
        pilot, user_id, WEB_REQUEST_ID, {"url": f"http://{address}:{port}/", "method": "GET"}
    )
    assert outcome["type"] == "block_output", outcome
    assert netns_canary.hits == before + 1


async def test_the_loopback_canary_is_reachable_when_exempt(
    open_pilot: Any, canary: LocalServer
) -> None:
    """Positive control: zero hits above mean "blocked", not "unreachable"."""
    pilot = await open_pilot(allowed=("127.0.0.1",))
    user_id = await _user(pilot)
    canary.route("/", reply(200, b"canary"))
    outcome = await _run(
        pilot, user_id, WEB_REQUEST_ID, {"url": f"http://127.0.0.1:{canary.port}/", "method": "GET"}
    )
    assert outcome["outputs"]["response"] == ["canary"]
    assert len(canary.hits) == 1
