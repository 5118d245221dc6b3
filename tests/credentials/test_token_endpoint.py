"""The one token-endpoint client: client authentication, ``resource``, and RFC 6749 5.2 errors.

A local server plays the token endpoint over a real socket and records what it was sent.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import SecretStr

from blockpilot import errors
from blockpilot.oauth.token_endpoint import TokenClient, exchange_code, refresh_tokens
from blockpilot.testing import LocalHTTPServer, Response

SECRET = "client-secret-canary-4d1e"
TOKENS = {"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600, "scope": "a b"}


def R(body: Any, status: int) -> Response:  # noqa: N802 - a short row maker for the table
    return Response.json(body, status)


def served(answer: Response) -> LocalHTTPServer:
    server = LocalHTTPServer()
    server.add_route("POST", "/token", answer)
    return server


async def test_post_auth_with_resource_and_pkce() -> None:
    with served(Response.json({**TOKENS, "refresh_token": "rt-1"})) as server:
        issued = await exchange_code(
            server.url("/token"),
            TokenClient("app", SecretStr(SECRET), "client_secret_post"),
            code="c0de",
            redirect_uri="https://bp.example/cb",
            code_verifier="v" * 43,
            resource="https://mcp.example/mcp",
        )
        [sent] = server.requests
    assert issued.access_token.get_secret_value() == "at-1"
    assert issued.refresh_token is not None and issued.expires_in == 3600
    assert issued.scopes == ["a", "b"]
    assert sent.form() == {
        "grant_type": "authorization_code",
        "code": "c0de",
        "redirect_uri": "https://bp.example/cb",
        "code_verifier": "v" * 43,
        "resource": "https://mcp.example/mcp",
        "client_id": "app",
        "client_secret": SECRET,
    }
    assert sent.header("authorization") is None


async def test_basic_auth_keeps_the_secret_out_of_the_form() -> None:
    with served(Response.json(TOKENS)) as server:
        await refresh_tokens(
            server.url("/token"),
            TokenClient("app:1", SecretStr("s%cret"), "client_secret_basic"),
            "rt-1",
        )
        [sent] = server.requests
    assert "client_secret" not in sent.form() and "client_id" not in sent.form()
    header = sent.header("authorization") or ""
    # RFC 6749 2.3.1: each part form-urlencoded, then base64.
    assert base64.b64decode(header.removeprefix("Basic ")).decode() == "app%3A1:s%25cret"


async def test_public_client_sends_its_id_only() -> None:
    with served(Response.json(TOKENS)) as server:
        await refresh_tokens(server.url("/token"), TokenClient("pub", None, "none"), "rt-1")
        [sent] = server.requests
    assert sent.form() == {
        "grant_type": "refresh_token",
        "refresh_token": "rt-1",
        "client_id": "pub",
    }


E = errors


@pytest.mark.parametrize(
    ("answer", "expected", "error"),
    [
        (R({"error": "invalid_grant"}, 400), E.TokenGrantRefusedError, "invalid_grant"),
        (R({"error": "invalid_client"}, 401), E.TokenClientRefusedError, "invalid_client"),
        (R({"error": "unauthorized_client"}, 400), E.TokenClientRefusedError,
         "unauthorized_client"),
        (R({"error": "invalid_target"}, 400), E.TokenRequestRefusedError, "invalid_target"),
        (R({"error": "invalid_scope"}, 400), E.TokenRequestRefusedError, "invalid_scope"),
        (R({"error": "<script>"}, 400), E.TokenRequestRefusedError, None),
        (Response.text("nope", 400), E.TokenRequestRefusedError, None),
        (Response.text("down", 503), E.TokenEndpointUnavailableError, None),
        (Response.text("slow down", 429), E.TokenEndpointUnavailableError, None),
        (Response.json({"token_type": "bearer"}), E.TokenResponseInvalidError, None),
        (Response.json({**TOKENS, "token_type": "mac"}), E.TokenResponseInvalidError, None),
        (Response.json({**TOKENS, "expires_in": -1}), E.TokenResponseInvalidError, None),
        (Response.json({**TOKENS, "refresh_token": ""}), E.TokenResponseInvalidError, None),
        (Response.json({**TOKENS, "scope": 'a "b'}), E.TokenResponseInvalidError, None),
    ],
)  # fmt: skip
async def test_errors_are_typed(answer: Response, expected: type[Any], error: str | None) -> None:
    with served(answer) as server, pytest.raises(expected) as caught:
        await refresh_tokens(
            server.url("/token"), TokenClient("app", SecretStr(SECRET)), "rt-canary-1"
        )
    assert caught.value.error == error
    assert SECRET not in caught.value.message and "rt-canary-1" not in caught.value.message


async def test_unreachable_and_too_large() -> None:
    with LocalHTTPServer() as server:
        url = server.url("/token")
    with pytest.raises(errors.TokenEndpointUnavailableError) as caught:
        await refresh_tokens(url, TokenClient("app"), "rt", timeout=5)
    assert caught.value.details["reason"] == "unreachable"
    big = Response.json({**TOKENS, "pad": "x" * (2 * 1024 * 1024)})
    with served(big) as server, pytest.raises(errors.TokenEndpointUnavailableError) as caught:
        await refresh_tokens(server.url("/token"), TokenClient("app"), "rt")
    assert caught.value.details["reason"] == "response_too_large"
