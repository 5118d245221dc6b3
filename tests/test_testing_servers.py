"""Tests for blockpilot.testing: the local fake servers, driven by real clients."""

from __future__ import annotations

import base64
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from blockpilot.testing import (
    FakeAnthropic,
    FakeGitHub,
    FakeOAuthProvider,
    FakeOpenAI,
    FakeSMTP,
    LocalHTTPServer,
    RecordedRequest,
    Response,
    pkce_challenge,
    pkce_pair,
)

REDIRECT = "http://127.0.0.1:9/callback"


# --------------------------------------------------------------------------------------
# module hygiene
# --------------------------------------------------------------------------------------


def test_import_does_not_pull_in_aiosmtpd() -> None:
    code = "import sys, blockpilot.testing; sys.exit('aiosmtpd' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=30).returncode == 0


def test_pkce_challenge_matches_rfc7636_example() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 appendix B
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    v, c = pkce_pair()
    assert 43 <= len(v) <= 128 and pkce_challenge(v) == c


# --------------------------------------------------------------------------------------
# LocalHTTPServer
# --------------------------------------------------------------------------------------


def test_local_server_routes_recording_and_queue() -> None:
    srv = LocalHTTPServer()
    with pytest.raises(RuntimeError):
        _ = srv.base_url
    srv.add_route("GET", "/items/{item_id}", lambda req, p: Response.json({"id": p["item_id"]}))
    srv.add_route("POST", "/fixed", Response.text("fixed", status=201))
    with srv:
        assert srv.base_url == f"http://127.0.0.1:{srv.port}" == srv.origin
        with httpx.Client(base_url=srv.base_url) as client:
            r = client.get("/items/42?x=1&y=", headers={"X-Thing": "a"})
            assert r.status_code == 200 and r.json() == {"id": "42"}
            r = client.post("/fixed", content=b"payload")
            assert (r.status_code, r.text) == (201, "fixed")
            assert client.get("/nope").status_code == 404
            assert client.delete("/fixed").status_code == 405

            srv.queue_response(Response.json({"err": 1}, status=503), path="/items/7", times=2)
            assert client.get("/items/1").status_code == 200  # other path is unaffected
            assert client.get("/items/7").status_code == 503
            assert client.get("/items/7").status_code == 503
            assert client.get("/items/7").status_code == 200

        first = srv.requests[0]
        assert isinstance(first, RecordedRequest)
        assert (first.method, first.path, first.target) == ("GET", "/items/42", "/items/42?x=1&y=")
        assert first.query == {"x": "1", "y": ""}
        assert first.header("x-thing") == "a" and first.headers["x-thing"] == "a"
        assert srv.requests[1].body == b"payload"
        assert srv.hits == 8
        assert len(srv.requests_to("/items/7", method="get")) == 3
        srv.reset()
        assert srv.hits == 0 and srv.last_request is None
    assert not srv.running
    srv.stop()  # idempotent


def test_local_server_handler_errors_become_500() -> None:
    def boom(req: RecordedRequest, params: dict[str, str]) -> Response:
        raise KeyError("missing")

    with LocalHTTPServer() as srv:
        srv.add_route("GET", "/boom", boom)
        r = httpx.get(srv.url("/boom"))
        assert r.status_code == 500
        assert [type(e) for e in srv.errors] == [KeyError]


def test_local_server_delay_and_chunked_upload() -> None:
    with LocalHTTPServer() as srv:
        srv.add_route("POST", "/echo", lambda req, p: Response(200, req.body))
        srv.queue_response(Response.text("late", delay=0.5))
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(srv.url("/slow"), timeout=0.1)

        def chunks() -> Iterator[bytes]:
            yield b"hello "
            yield b"world"

        r = httpx.post(srv.url("/echo"), content=chunks())
        assert r.content == b"hello world"
        assert srv.last_request is not None
        assert srv.last_request.header("transfer-encoding") == "chunked"


async def test_local_server_with_async_client() -> None:
    with FakeOpenAI() as srv:
        async with httpx.AsyncClient(base_url=srv.base_url) as client:
            r = await client.post(
                "/chat/completions",
                headers={"Authorization": "Bearer anything"},
                json={"model": "m", "messages": [{"role": "user", "content": "async"}]},
            )
        assert r.json()["choices"][0]["message"]["content"] == "echo: async"


# --------------------------------------------------------------------------------------
# FakeOpenAI
# --------------------------------------------------------------------------------------


def _chat(srv: FakeOpenAI, key: str, content: object = "hello", path: str = "") -> httpx.Response:
    return httpx.post(
        (path or srv.base_url) + "/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]},
    )


def test_openai_echo_and_shape() -> None:
    with FakeOpenAI(api_keys={"sk-good"}) as srv:
        assert srv.base_url == f"http://127.0.0.1:{srv.port}/v1"
        r = _chat(srv, "sk-good", "hi there")
        assert r.status_code == 200
        body = r.json()
        assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
        assert body["model"] == "gpt-4o-mini" and isinstance(body["created"], int)
        choice = body["choices"][0]
        assert choice["message"] == {"role": "assistant", "content": "echo: hi there"}
        assert choice["finish_reason"] == "stop"
        usage = body["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        # content-part lists and the un-prefixed path work too
        r = _chat(srv, "sk-good", [{"type": "text", "text": "parts"}], path=srv.origin)
        assert r.json()["choices"][0]["message"]["content"] == "echo: parts"
        assert srv.requests[0].json()["messages"][0]["content"] == "hi there"
        assert srv.requests[0].header("authorization") == "Bearer sk-good"
        models = httpx.get(srv.base_url + "/models", headers={"Authorization": "Bearer sk-good"})
        assert models.json()["object"] == "list"


def test_openai_rejects_bad_key_and_echoes_it() -> None:
    with FakeOpenAI(api_keys={"sk-good"}) as srv:
        r = _chat(srv, "sk-wrong-secret-1234")
        assert r.status_code == 401
        error = r.json()["error"]
        assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
        assert "sk-wrong-secret-1234" in error["message"]  # hostile: full key echoed
        r = httpx.post(srv.base_url + "/chat/completions", json={"model": "m", "messages": []})
        assert r.status_code == 401
        r = httpx.post(
            srv.base_url + "/chat/completions",
            headers={"Authorization": "Bearer sk-good"},
            content=b"{not json",
        )
        assert r.status_code == 400 and "error" in r.json()
        srv.allow_key("sk-later")
        assert _chat(srv, "sk-later").status_code == 200


def test_openai_script_tool_calls_then_echo() -> None:
    with FakeOpenAI() as srv:
        srv.script(
            [
                {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]},
                "It is sunny.",
            ]
        )
        assert srv.pending_script == 2
        first = _chat(srv, "any-key").json()["choices"][0]
        assert first["finish_reason"] == "tool_calls"
        call = first["message"]["tool_calls"][0]
        assert call["type"] == "function" and call["id"]
        assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
        assert first["message"]["content"] is None
        second = _chat(srv, "any-key").json()["choices"][0]
        assert second["message"]["content"] == "It is sunny."
        assert _chat(srv, "k", "again").json()["choices"][0]["message"]["content"] == "echo: again"
        with pytest.raises(ValueError):
            srv.script([{"nothing": True}])
        srv.script(["x"])
        srv.reset()
        assert srv.pending_script == 0 and srv.hits == 0


# --------------------------------------------------------------------------------------
# FakeAnthropic
# --------------------------------------------------------------------------------------


def _message(
    srv: FakeAnthropic, headers: dict[str, str], body: dict[str, object] | None = None
) -> httpx.Response:
    payload = body or {
        "model": "claude-x",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "ping"}],
    }
    return httpx.post(srv.base_url + "/v1/messages", headers=headers, json=payload)


def test_anthropic_messages() -> None:
    good = {"x-api-key": "ak-good", "anthropic-version": "2023-06-01"}
    with FakeAnthropic(api_keys={"ak-good"}) as srv:
        assert srv.base_url == srv.origin
        r = _message(srv, good)
        assert r.status_code == 200
        body = r.json()
        assert body["type"] == "message" and body["role"] == "assistant"
        assert body["model"] == "claude-x" and body["id"].startswith("msg_")
        assert body["content"] == [{"type": "text", "text": "echo: ping"}]
        assert body["stop_reason"] == "end_turn"
        assert set(body["usage"]) >= {"input_tokens", "output_tokens"}

        r = _message(srv, {"x-api-key": "nope", "anthropic-version": "2023-06-01"})
        assert r.status_code == 401
        assert r.json() == {
            "type": "error",
            "error": {"type": "authentication_error", "message": "invalid x-api-key"},
        }
        r = _message(srv, {"x-api-key": "ak-good"})
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
        r = _message(srv, good, {"model": "m", "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 400 and "max_tokens" in r.json()["error"]["message"]

        srv.script([{"tool_calls": [{"name": "search", "arguments": {"q": "cats"}}]}])
        body = _message(srv, good).json()
        assert body["stop_reason"] == "tool_use"
        assert body["content"][0]["type"] == "tool_use"
        assert body["content"][0]["input"] == {"q": "cats"}
        blocks = [{"type": "text", "text": "block text"}]
        body = _message(
            srv,
            good,
            {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": blocks}]},
        ).json()
        assert body["content"][0]["text"] == "echo: block text"


# --------------------------------------------------------------------------------------
# FakeGitHub
# --------------------------------------------------------------------------------------


def test_github_issue_and_auth() -> None:
    with FakeGitHub(tokens={"ghp_good"}) as srv:
        srv.add_issue("acme", "widgets", 7, "Broken", "It broke", "alice")
        with httpx.Client(base_url=srv.base_url) as client:
            r = client.get(
                "/repos/acme/widgets/issues/7", headers={"Authorization": "Bearer ghp_good"}
            )
            assert r.status_code == 200
            issue = r.json()
            assert issue["number"] == 7 and issue["title"] == "Broken"
            assert issue["body"] == "It broke" and issue["user"]["login"] == "alice"
            assert issue["state"] == "open"
            assert issue["html_url"] == "https://github.com/acme/widgets/issues/7"

            r = client.get(
                "/repos/ACME/Widgets/issues/7", headers={"Authorization": "token ghp_good"}
            )
            assert r.status_code == 200

            r = client.get("/repos/acme/widgets/issues/7", headers={"Authorization": "token bad"})
            assert r.status_code == 401 and r.json()["message"] == "Bad credentials"
            assert "documentation_url" in r.json()
            assert client.get("/repos/acme/widgets/issues/7").status_code == 401

            r = client.get(
                "/repos/acme/widgets/issues/8", headers={"Authorization": "token ghp_good"}
            )
            assert r.status_code == 404 and r.json()["message"] == "Not Found"

            assert client.get("/user", headers={"Authorization": "token later"}).status_code == 401
            srv.allow_token("later", login="bob")
            r = client.get("/user", headers={"Authorization": "token later"})
            assert r.status_code == 200 and r.json()["login"] == "bob"

        assert srv.tokens_used == ["ghp_good", "ghp_good", "bad", "ghp_good", "later", "later"]
        srv.reset()
        assert srv.tokens_used == [] and "later" in srv.tokens


# --------------------------------------------------------------------------------------
# FakeOAuthProvider
# --------------------------------------------------------------------------------------


@pytest.fixture
def oauth() -> Iterator[FakeOAuthProvider]:
    with FakeOAuthProvider(redirect_uris=[REDIRECT], rotate_refresh_tokens=True) as srv:
        yield srv


def _authorize(srv: FakeOAuthProvider, challenge: str | None, **overrides: str) -> httpx.Response:
    params = {
        "client_id": "test-client",
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "state": "st-123",
        "scope": "repo read:user",
    }
    if challenge is not None:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(overrides)
    return httpx.get(srv.authorize_url, params=params, follow_redirects=False)


def _callback_params(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 302
    location = urlsplit(r.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def _basic(client_id: str = "test-client", secret: str = "test-secret") -> dict[str, str]:
    token = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _code_for(srv: FakeOAuthProvider) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    return _callback_params(_authorize(srv, challenge))["code"], verifier


def test_oauth_full_code_flow_with_pkce(oauth: FakeOAuthProvider) -> None:
    verifier, challenge = pkce_pair()
    cb = _callback_params(_authorize(oauth, challenge))
    assert cb["state"] == "st-123" and cb["code"]

    form = {
        "grant_type": "authorization_code",
        "code": cb["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    r = httpx.post(oauth.token_url, data=form, headers=_basic())
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 3600
    assert tokens["scope"] == "repo read:user"
    assert tokens["access_token"] and tokens["refresh_token"]
    assert r.headers["cache-control"] == "no-store"

    # the code is single-use
    r = httpx.post(oauth.token_url, data=form, headers=_basic())
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"

    me = httpx.get(
        oauth.userinfo_url, headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.json()["login"] == "octocat"
    assert httpx.get(oauth.userinfo_url, headers={"Authorization": "Bearer x"}).status_code == 401
    assert oauth.token_requests == 2 and oauth.refresh_count == 0
    assert oauth.client_auth_methods == ["client_secret_basic", "client_secret_basic"]


def test_oauth_token_endpoint_rejections(oauth: FakeOAuthProvider) -> None:
    code, verifier = _code_for(oauth)
    base = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    # wrong client secret (client_secret_post) -> 401, code untouched
    bad_client = {**base, "code_verifier": verifier, "client_id": "test-client"}
    r = httpx.post(oauth.token_url, data={**bad_client, "client_secret": "wrong"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    # wrong PKCE verifier -> invalid_grant (and the code is burnt)
    wrong_verifier = {**base, "code_verifier": pkce_pair()[0]}
    r = httpx.post(oauth.token_url, data=wrong_verifier, headers=_basic())
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"

    code, verifier = _code_for(oauth)
    r = httpx.post(
        oauth.token_url,
        data={**base, "code": code, "code_verifier": verifier, "redirect_uri": REDIRECT + "x"},
        headers=_basic(),
    )
    assert r.json()["error"] == "invalid_grant"

    # client_secret_post works
    code, verifier = _code_for(oauth)
    r = httpx.post(
        oauth.token_url,
        data={
            **base,
            "code": code,
            "code_verifier": verifier,
            "client_id": "test-client",
            "client_secret": "test-secret",
        },
    )
    assert r.status_code == 200 and oauth.client_auth_methods[-1] == "client_secret_post"
    r = httpx.post(oauth.token_url, data={"grant_type": "password"}, headers=_basic())
    assert r.json()["error"] == "unsupported_grant_type"
    r = httpx.post(oauth.token_url, json={"grant_type": "refresh_token"}, headers=_basic())
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_oauth_authorize_validation(oauth: FakeOAuthProvider) -> None:
    _, challenge = pkce_pair()
    r = _authorize(oauth, challenge, client_id="unknown")
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"
    r = _authorize(oauth, challenge, redirect_uri="https://evil.example/cb")
    assert r.status_code == 400  # never redirect to an unregistered URI
    assert _callback_params(_authorize(oauth, None))["error"] == "invalid_request"
    cb = _callback_params(_authorize(oauth, challenge, code_challenge_method="plain"))
    assert cb["error"] == "invalid_request"
    cb = _callback_params(_authorize(oauth, challenge, response_type="token"))
    assert cb["error"] == "unsupported_response_type" and cb["state"] == "st-123"
    assert _callback_params(_authorize(oauth, challenge, state=""))["error"] == "invalid_request"
    oauth.deny_next_authorization()
    assert _callback_params(_authorize(oauth, challenge))["error"] == "access_denied"
    assert "code" in _callback_params(_authorize(oauth, challenge))
    meta = httpx.get(oauth.url("/.well-known/oauth-authorization-server")).json()
    assert meta["token_endpoint"] == oauth.token_url
    assert meta["authorization_endpoint"] == oauth.authorize_url


def _refresh(srv: FakeOAuthProvider, refresh_token: str) -> httpx.Response:
    return httpx.post(
        srv.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        headers=_basic(),
    )


def test_oauth_refresh_rotation_and_reuse(oauth: FakeOAuthProvider) -> None:
    seeded = oauth.issue_tokens(scopes=["repo"], expires_in=60)
    assert seeded["scope"] == "repo" and seeded["expires_in"] == 60
    assert oauth.access_token_valid(seeded["access_token"])

    r = _refresh(oauth, seeded["refresh_token"])
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["refresh_token"] != seeded["refresh_token"]
    assert new["access_token"] != seeded["access_token"] and new["scope"] == "repo"
    assert not oauth.refresh_token_valid(seeded["refresh_token"])

    r = _refresh(oauth, seeded["refresh_token"])  # reuse of the rotated-out token
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert _refresh(oauth, new["refresh_token"]).status_code == 200
    assert oauth.refresh_count == 3 and oauth.token_requests == 3

    oauth.reset()
    assert oauth.refresh_count == 0 and oauth.token_requests == 0 and oauth.hits == 0


def test_oauth_refresh_without_rotation_and_failure_injection() -> None:
    with FakeOAuthProvider(expires_in=0) as srv:
        seeded = srv.issue_tokens(scopes=["a", "b"])
        assert not srv.access_token_valid(seeded["access_token"])  # expires_in=0
        headers = {"Authorization": f"Bearer {seeded['access_token']}"}
        assert httpx.get(srv.userinfo_url, headers=headers).status_code == 401

        srv.expires_in = 120
        first = _refresh(srv, seeded["refresh_token"]).json()
        assert first["refresh_token"] == seeded["refresh_token"] and first["expires_in"] == 120

        srv.fail_next_refresh()
        r = _refresh(srv, seeded["refresh_token"])
        assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"
        srv.fail_next_refresh(error="invalid_grant")
        r = _refresh(srv, seeded["refresh_token"])
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        # failures don't consume the token
        assert _refresh(srv, seeded["refresh_token"]).status_code == 200

        narrowed = httpx.post(
            srv.token_url,
            data={
                "grant_type": "refresh_token",
                "refresh_token": seeded["refresh_token"],
                "scope": "a",
            },
            headers=_basic(),
        ).json()
        assert narrowed["scope"] == "a"
        srv.revoke_refresh_token(seeded["refresh_token"])
        assert _refresh(srv, seeded["refresh_token"]).json()["error"] == "invalid_grant"
        assert srv.refresh_count == 6


def test_oauth_refresh_delay_widens_race(oauth: FakeOAuthProvider) -> None:
    oauth.refresh_delay = 0.3
    seeded = oauth.issue_tokens()
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def worker() -> None:
        r = _refresh(oauth, seeded["refresh_token"])
        with lock:
            results.append(r)

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    elapsed = time.monotonic() - started
    assert elapsed >= 0.3  # the delay was applied (no upper bound: timings live in bench/)
    assert sorted(r.status_code for r in results) == [200, 400]
    assert oauth.refresh_count == 2


def test_oauth_public_client_and_fixed_scopes() -> None:
    with FakeOAuthProvider(client_id="pub", client_secret=None, scopes=["only"]) as srv:
        verifier, challenge = pkce_pair()
        cb = _callback_params(_authorize(srv, challenge, client_id="pub"))
        r = httpx.post(
            srv.token_url,
            data={
                "grant_type": "authorization_code",
                "code": cb["code"],
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
                "client_id": "pub",
            },
        )
        assert r.status_code == 200 and r.json()["scope"] == "only"
        assert srv.client_auth_methods == ["none"]


# --------------------------------------------------------------------------------------
# FakeSMTP
# --------------------------------------------------------------------------------------


def _email(subject: str = "Hello") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "bot@example.com"
    msg["To"] = "alice@example.com"
    msg["Subject"] = subject
    msg.set_content("plain body\n")
    msg.add_alternative("<p>html body</p>", subtype="html")
    return msg


def test_smtp_login_and_delivery() -> None:
    with FakeSMTP(username="mailer", password="s3cret") as srv:
        assert srv.host == "127.0.0.1" and srv.port > 0
        with smtplib.SMTP(srv.host, srv.port, timeout=5) as client:
            client.login("mailer", "s3cret")
            client.send_message(_email(), to_addrs=["alice@example.com", "bob@example.com"])
        [received] = srv.wait_for_messages(1, timeout=2)
        assert received.mail_from == "bot@example.com"
        assert received.rcpt_tos == ["alice@example.com", "bob@example.com"]
        assert received.login == "mailer"
        assert received.subject == "Hello" and received.message["To"] == "alice@example.com"
        assert received.text() == "plain body\n"
        assert srv.auth_attempts[-1][1:] == ("mailer", True)

        with smtplib.SMTP(srv.host, srv.port, timeout=5) as client:
            client.ehlo()
            code, _ = client.docmd(
                "AUTH", "PLAIN " + base64.b64encode(b"\0mailer\0s3cret").decode()
            )
            assert code == 235
            srv.reject_next("554 5.7.1 Nope")
            with pytest.raises(smtplib.SMTPDataError):
                client.send_message(_email("rejected"))
            client.send_message(_email("second"))
        assert [m.subject for m in srv.messages] == ["Hello", "second"]
        srv.reset()
        assert srv.messages == [] and srv.auth_attempts == []


def test_smtp_rejects_bad_credentials_and_unauthenticated_mail() -> None:
    with FakeSMTP(username="mailer", password="s3cret") as srv:
        with smtplib.SMTP(srv.host, srv.port, timeout=5) as client:
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login("mailer", "wrong")
            with pytest.raises(smtplib.SMTPSenderRefused) as info:
                client.send_message(_email())
            assert info.value.smtp_code == 530
        assert srv.messages == []
        assert srv.auth_attempts and not srv.auth_attempts[-1][2]


def test_smtp_without_credentials() -> None:
    with FakeSMTP(username=None) as srv:
        with smtplib.SMTP(srv.host, srv.port, timeout=5) as client:
            client.send_message(_email())
        assert srv.messages[0].login is None
