"""SendWebRequestBlock and SendAuthenticatedWebRequestBlock against local servers (real sockets)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blockpilot.blocks.library.http import SendAuthenticatedWebRequestBlock, SendWebRequestBlock
from blockpilot.testing import LocalHTTPServer, RecordedRequest, Response

WEB = SendWebRequestBlock.id
AUTH = SendAuthenticatedWebRequestBlock.id
SECRET = "hs-secret-value-for-server-a-0123456789"


@pytest.fixture
def server_a() -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer() as srv:
        yield srv


@pytest.fixture
def server_b() -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer() as srv:
        yield srv


def _echo(request: RecordedRequest, params: dict[str, str]) -> Response:
    body = None
    if request.body:
        try:
            body = request.json()
        except ValueError:
            body = request.text
    return Response.json(
        {"method": request.method, "path": request.path, "query": request.query, "body": body}
    )


# --------------------------------------------------------------------------- SendWebRequestBlock


async def test_get_json(pilot, alice, run, server_a) -> None:
    server_a.add_route(
        "GET", "/items/{id}", lambda req, p: Response.json({"id": p["id"], "ok": True})
    )
    r = await run(pilot, alice, WEB, {"url": server_a.url("/items/42?x=1"), "method": "GET"})
    assert r["type"] == "block_output", r
    assert r["outputs"] == {"response": [{"id": "42", "ok": True}]}
    assert server_a.hits == 1
    req = server_a.last_request
    assert req.method == "GET" and req.query == {"x": "1"} and req.body == b""


async def test_get_ignores_body(pilot, alice, run, server_a) -> None:
    server_a.add_route("GET", "/echo", _echo)
    r = await run(
        pilot, alice, WEB, {"url": server_a.url("/echo"), "method": "GET", "body": {"a": 1}}
    )
    assert r["outputs"]["response"][0]["body"] is None


async def test_post_json_body(pilot, alice, run, server_a) -> None:
    server_a.add_route("POST", "/echo", _echo)
    payload = {"name": "Ada", "tags": ["x", "y"], "n": 3}
    r = await run(
        pilot,
        alice,
        WEB,
        {"url": server_a.url("/echo"), "body": payload, "headers": {"X-Trace": "t-1"}},
    )
    assert r["type"] == "block_output", r
    assert r["outputs"]["response"][0] == {
        "method": "POST",
        "path": "/echo",
        "query": {},
        "body": payload,
    }
    req = server_a.last_request
    assert req.header("content-type", "").startswith("application/json")
    assert req.header("x-trace") == "t-1"
    assert req.json() == payload


async def test_post_text_body_without_json_format(pilot, alice, run, server_a) -> None:
    server_a.add_route("POST", "/raw", Response.text("plain reply"))
    r = await run(
        pilot,
        alice,
        WEB,
        {
            "url": server_a.url("/raw"),
            "method": "POST",
            "json_format": False,
            "body": "line 1\nline 2",
        },
    )
    assert r["outputs"] == {"response": ["plain reply"]}
    assert server_a.last_request.body == b"line 1\nline 2"


async def test_4xx_goes_to_client_error_pin(pilot, alice, run, server_a) -> None:
    for status in (400, 401, 404, 422, 429):
        body = {"error": "nope", "status": status}
        server_a.add_route("GET", f"/bad{status}", Response.json(body, status=status))
        r = await run(pilot, alice, WEB, {"url": server_a.url(f"/bad{status}"), "method": "GET"})
        assert r["type"] == "block_output", r
        assert r["outputs"] == {"client_error": [body]}


async def test_5xx_goes_to_server_error_pin(pilot, alice, run, server_a) -> None:
    for status in (500, 502, 503):
        server_a.add_route("GET", f"/boom{status}", Response.text("exploded", status=status))
        r = await run(pilot, alice, WEB, {"url": server_a.url(f"/boom{status}"), "method": "GET"})
        assert r["type"] == "block_output", r
        assert r["outputs"] == {"server_error": ["exploded"]}


async def test_non_json_response_with_json_format_is_text(pilot, alice, run, server_a) -> None:
    server_a.add_route(
        "GET", "/html", Response(200, b"<html>hi</html>", {"Content-Type": "text/html"})
    )
    r = await run(
        pilot, alice, WEB, {"url": server_a.url("/html"), "method": "GET", "json_format": True}
    )
    assert r["outputs"] == {"response": ["<html>hi</html>"]}


async def test_empty_response_body(pilot, alice, run, server_a) -> None:
    server_a.add_route("DELETE", "/x", Response(204))
    r = await run(pilot, alice, WEB, {"url": server_a.url("/x"), "method": "DELETE"})
    assert r["outputs"] == {"response": [""]}


async def test_loopback_not_in_allowed_hosts_is_blocked(
    make_pilot, run, server_a, server_b
) -> None:
    pilot = await make_pilot(http_allowed_hosts=(f"127.0.0.1:{server_a.port}",))
    alice, _ = await pilot.users.create("alice")
    server_b.add_route("GET", "/", Response.text("internal"))
    r = await run(pilot, alice, WEB, {"url": server_b.url("/"), "method": "GET"})
    assert r["type"] == "error", r
    assert r["code"] == "block_failed"
    assert "Destination blocked" in r["message"]
    assert server_b.hits == 0
    # The allowed one still works.
    server_a.add_route("GET", "/", Response.text("ok"))
    r = await run(pilot, alice, WEB, {"url": server_a.url("/"), "method": "GET"})
    assert r["outputs"] == {"response": ["ok"]}


async def test_loopback_spellings_are_blocked(make_pilot, run, server_b) -> None:
    pilot = await make_pilot()
    alice, _ = await pilot.users.create("alice")
    hosts = ["localhost", "127.1", "2130706433", "0x7f.0.0.1", "[::1]", "[::ffff:127.0.0.1]"]
    for host in [*hosts, "0.0.0.0"]:
        url = f"http://{host}:{server_b.port}/"
        r = await run(pilot, alice, WEB, {"url": url, "method": "GET"})
        assert r["type"] == "error", (host, r)
        assert r["code"] == "block_failed"
    assert server_b.hits == 0


async def test_redirect_to_blocked_loopback_is_refused(make_pilot, run, server_a, server_b) -> None:
    pilot = await make_pilot(http_allowed_hosts=(f"127.0.0.1:{server_a.port}",))
    alice, _ = await pilot.users.create("alice")
    server_a.add_route("GET", "/go", Response.redirect(server_b.url("/secret")))
    r = await run(pilot, alice, WEB, {"url": server_a.url("/go"), "method": "GET"})
    assert r["type"] == "error" and r["code"] == "block_failed", r
    assert "Destination blocked" in r["message"]
    assert server_a.hits == 1 and server_b.hits == 0


async def test_non_http_schemes_are_refused(pilot, alice, run) -> None:
    for url in ["file:///etc/passwd", "ftp://example.com/x", "gopher://127.0.0.1:70/"]:
        r = await run(pilot, alice, WEB, {"url": url, "method": "GET"})
        assert r["type"] == "error" and r["code"] == "block_failed", r


# ------------------------------------------------------------- SendAuthenticatedWebRequestBlock


async def _add_host_cred(pilot, user, host: str, headers: dict[str, str] | None = None) -> str:
    meta = await pilot.add_credentials(
        user.id,
        {
            "provider": "http",
            "type": "host_scoped",
            "host": host,
            "headers": headers or {"X-Api-Key": SECRET},
        },
    )
    return meta.id


async def test_host_scoped_headers_reach_their_host(pilot, alice, run, server_a) -> None:
    server_a.add_route("GET", "/me", Response.json({"me": "alice"}))
    await _add_host_cred(pilot, alice, f"127.0.0.1:{server_a.port}")
    r = await run(pilot, alice, AUTH, {"url": server_a.url("/me"), "method": "GET"})
    assert r["type"] == "block_output", r
    assert r["outputs"] == {"response": [{"me": "alice"}]}
    assert server_a.last_request.header("x-api-key") == SECRET
    assert SECRET not in str(r)
    assert r["credentials_used"][0]["provider"] == "http"


async def test_redirect_to_other_origin_gets_no_credential(
    pilot, alice, run, server_a, server_b
) -> None:
    server_a.add_route("GET", "/start", Response.redirect(server_b.url("/landing")))
    server_b.add_route("GET", "/landing", Response.json({"landed": True}))
    await _add_host_cred(
        pilot,
        alice,
        f"127.0.0.1:{server_a.port}",
        {"X-Api-Key": SECRET, "Authorization": "Bearer " + SECRET + "2"},
    )
    r = await run(
        pilot,
        alice,
        AUTH,
        {
            "url": server_a.url("/start"),
            "method": "GET",
            "headers": {"X-Plain": "fine", "Authorization": "Bearer user"},
        },
    )
    assert r["type"] == "block_output", r
    assert r["outputs"] == {"response": [{"landed": True}]}
    assert server_a.last_request.header("x-api-key") == SECRET
    landing = server_b.last_request
    assert landing is not None
    assert landing.header("x-api-key") is None
    assert landing.header("authorization") is None
    assert SECRET not in str(landing.headers)
    assert landing.header("x-plain") == "fine"  # ordinary caller headers still follow


async def test_redirect_back_to_first_origin_does_not_rearm_credential(
    pilot, alice, run, server_a, server_b
) -> None:
    server_a.add_route("GET", "/start", Response.redirect(server_b.url("/bounce")))
    server_b.add_route("GET", "/bounce", Response.redirect(server_a.url("/end")))
    server_a.add_route("GET", "/end", Response.json({"end": True}))
    await _add_host_cred(pilot, alice, f"127.0.0.1:{server_a.port}")
    r = await run(pilot, alice, AUTH, {"url": server_a.url("/start"), "method": "GET"})
    assert r["outputs"] == {"response": [{"end": True}]}
    end = server_a.requests_to("/end")[0]
    assert end.header("x-api-key") is None
    assert server_b.last_request.header("x-api-key") is None


async def test_credential_for_another_host_is_never_sent(
    pilot, alice, run, server_a, server_b
) -> None:
    server_a.add_route("GET", "/", Response.text("ok"))
    cred_id = await _add_host_cred(pilot, alice, f"127.0.0.1:{server_b.port}")
    r = await run(pilot, alice, AUTH, {"url": server_a.url("/"), "method": "GET"})
    assert r["type"] == "setup_requirements", r
    missing = r["setup_info"]["user_readiness"]["missing_credentials"]["credentials"]
    assert missing["provider"] == "http" and missing["type"] == "host_scoped"
    assert missing["host"] == f"127.0.0.1:{server_a.port}"
    # Naming the other host's credential explicitly does not help either.
    r = await run(
        pilot, alice, AUTH, {"url": server_a.url("/"), "method": "GET", "credentials": cred_id}
    )
    assert r["type"] == "setup_requirements", r
    r = await run(
        pilot,
        alice,
        AUTH,
        {
            "url": server_a.url("/"),
            "method": "GET",
            "credentials": {"id": cred_id, "provider": "http", "type": "host_scoped"},
        },
    )
    assert r["type"] == "setup_requirements", r
    assert server_a.hits == 0 and server_b.hits == 0


async def test_credential_without_port_does_not_match_other_ports(
    pilot, alice, run, server_a
) -> None:
    await _add_host_cred(pilot, alice, "127.0.0.1")
    r = await run(pilot, alice, AUTH, {"url": server_a.url("/"), "method": "GET"})
    assert r["type"] == "setup_requirements", r
    assert server_a.hits == 0


async def test_https_only_credential_not_sent_over_http(pilot, alice, run, server_a) -> None:
    await _add_host_cred(pilot, alice, f"https://127.0.0.1:{server_a.port}")
    r = await run(pilot, alice, AUTH, {"url": server_a.url("/"), "method": "GET"})
    assert r["type"] == "setup_requirements", r
    assert server_a.hits == 0


async def test_other_users_credential_is_never_used(pilot, alice, bob, run, server_a) -> None:
    cred_id = await _add_host_cred(pilot, bob, f"127.0.0.1:{server_a.port}")
    r = await run(pilot, alice, AUTH, {"url": server_a.url("/"), "method": "GET"})
    assert r["type"] == "setup_requirements", r
    r = await run(
        pilot, alice, AUTH, {"url": server_a.url("/"), "method": "GET", "credentials": cred_id}
    )
    assert r["type"] == "setup_requirements", r
    assert server_a.hits == 0


async def test_stored_header_wins_over_user_header(pilot, alice, run, server_a) -> None:
    server_a.add_route("GET", "/", Response.text("ok"))
    await _add_host_cred(pilot, alice, f"127.0.0.1:{server_a.port}")
    r = await run(
        pilot,
        alice,
        AUTH,
        {
            "url": server_a.url("/"),
            "method": "GET",
            "headers": {"x-api-key": "attacker-chosen", "X-Other": "kept"},
        },
    )
    assert r["type"] == "block_output", r
    req = server_a.last_request
    assert req.header("x-api-key") == SECRET  # exactly one value: the stored one
    assert req.header("x-other") == "kept"


async def test_auth_block_4xx_and_secret_scrubbed_from_echo(pilot, alice, run, server_a) -> None:
    # A hostile server echoes the header back; the output must not contain the secret.
    server_a.add_route(
        "GET",
        "/echo",
        lambda req, p: Response.json({"you_sent": req.header("x-api-key")}, status=403),
    )
    await _add_host_cred(pilot, alice, f"127.0.0.1:{server_a.port}")
    r = await run(pilot, alice, AUTH, {"url": server_a.url("/echo"), "method": "GET"})
    assert r["type"] == "block_output", r
    assert "client_error" in r["outputs"]
    assert SECRET not in str(r)


async def test_auth_block_empty_input_shows_schema(pilot, alice, run, server_a) -> None:
    await _add_host_cred(pilot, alice, f"127.0.0.1:{server_a.port}")
    r = await run(pilot, alice, AUTH, {})
    assert r["type"] == "block_details", r
    assert "url" in r["block"]["inputs"]["properties"]
    assert server_a.hits == 0


async def test_same_origin_redirect_keeps_credential(pilot, alice, run, server_a) -> None:
    server_a.add_route("GET", "/old", Response.redirect("/new", status=301))
    server_a.add_route("GET", "/new", Response.json({"new": True}))
    await _add_host_cred(pilot, alice, f"127.0.0.1:{server_a.port}")
    r = await run(pilot, alice, AUTH, {"url": server_a.url("/old"), "method": "GET"})
    assert r["outputs"] == {"response": [{"new": True}]}
    assert server_a.requests_to("/new")[0].header("x-api-key") == SECRET


async def test_routing_and_framing_headers_are_refused(pilot, alice, run, server_a) -> None:
    # Regression: a caller-chosen Host header went to the vetted address, so on a shared
    # (virtual-hosting) server the stored credential reached whichever site that Host named.
    server_a.add_route("GET", "/", Response.text("ok"))
    await _add_host_cred(pilot, alice, f"127.0.0.1:{server_a.port}")
    refused = [
        {"Host": "evil.example"},
        {"host": "evil.example"},
        {"Content-Length": "0"},
        {"Transfer-Encoding": "chunked"},
        {"Connection": "close, X-Api-Key"},
    ]
    for block_id in (WEB, AUTH):
        for headers in refused:
            data = {"url": server_a.url("/"), "method": "GET", "headers": headers}
            r = await run(pilot, alice, block_id, data)
            assert r["type"] == "error" and r["code"] == "block_failed", (headers, r)
            assert "header" in r["message"].lower()
    assert server_a.hits == 0


async def test_malformed_headers_are_clear_errors_and_nothing_is_sent(
    pilot, alice, run, server_a
) -> None:
    malformed = [
        {"X-Bad": "a\r\nInjected: 1"},
        {"X-Bad": "a\nb"},
        {"Bad Name": "v"},
        {"": "v"},
        {"X-Bad": "caf\u00e9"},
        {"X:Y": "v"},
    ]
    for headers in malformed:
        data = {"url": server_a.url("/"), "method": "GET", "headers": headers}
        r = await run(pilot, alice, WEB, data)
        assert r["type"] == "error" and r["code"] == "block_failed", (headers, r)
        assert "header" in r["message"].lower()
    assert server_a.hits == 0
