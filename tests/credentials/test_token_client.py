"""The token endpoint client: no proxy from the environment, a capped answer, the timeouts.

Regressions: token refresh used a plain ``httpx.AsyncClient`` that took ``HTTP(S)_PROXY``
from the environment (a dead or hostile proxy broke or saw every refresh) and read the
token endpoint's answer whole, however large.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager

import pytest
from pydantic import SecretStr

from blockpilot.credentials.models import OAuth2Credentials
from blockpilot.errors import OAuthRefreshError, ReauthorizationRequiredError
from blockpilot.oauth.http import MAX_RESPONSE_BYTES
from blockpilot.oauth.providers import OAuthProvider
from blockpilot.testing import FakeOAuthProvider, Response

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def _valid_but_huge_token_answer(size: int) -> bytes:
    """A well-formed token response padded past *size* bytes: only the cap refuses it."""
    return json.dumps(
        {
            "access_token": "at_huge_0123456789",
            "token_type": "bearer",
            "expires_in": 3600,
            "padding": "x" * size,
        }
    ).encode()


@pytest.fixture
def oauth_server() -> Iterator[FakeOAuthProvider]:
    with FakeOAuthProvider(scopes=["repo"]) as srv:
        yield srv


def _provider(token_url: str, srv: FakeOAuthProvider | None = None) -> OAuthProvider:
    return OAuthProvider(
        name="github",
        client_id=srv.client_id if srv else "cid",
        client_secret=SecretStr((srv.client_secret or "") if srv else "csecret"),
        authorize_url="",
        token_url=token_url,
    )


def _credentials(refresh_token: str) -> OAuth2Credentials:
    return OAuth2Credentials(
        provider="github",
        title="octocat",
        access_token=SecretStr("at_old_0123456789"),
        refresh_token=SecretStr(refresh_token),
        access_token_expires_at=int(time.time()) - 5,
        scopes=["repo"],
    )


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- proxies


async def test_token_refresh_ignores_proxy_variables(
    monkeypatch: pytest.MonkeyPatch, oauth_server: FakeOAuthProvider
) -> None:
    dead = f"http://127.0.0.1:{_dead_port()}"
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, dead)
        monkeypatch.setenv(name.lower(), dead)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    tokens = oauth_server.issue_tokens(scopes=["repo"], expires_in=1)
    fresh = await _provider(oauth_server.token_url, oauth_server).refresh(
        _credentials(tokens["refresh_token"]), timeout=5
    )
    assert fresh.access_token.get_secret_value() != "at_old_0123456789"
    assert oauth_server.access_token_valid(fresh.access_token.get_secret_value())
    assert oauth_server.refresh_count == 1


# --------------------------------------------------------------------------- size cap


async def test_a_huge_token_answer_is_refused_not_read_whole(
    oauth_server: FakeOAuthProvider,
) -> None:
    tokens = oauth_server.issue_tokens(scopes=["repo"], expires_in=1)
    oauth_server.queue_response(
        Response(
            200,
            _valid_but_huge_token_answer(2 * MAX_RESPONSE_BYTES),
            {"Content-Type": "application/json"},
        ),
        path="/token",
    )
    with pytest.raises(OAuthRefreshError) as caught:
        await _provider(oauth_server.token_url, oauth_server).refresh(
            _credentials(tokens["refresh_token"]), timeout=5
        )
    assert not isinstance(caught.value, ReauthorizationRequiredError)  # transient: keep tokens
    assert caught.value.details["reason"] == "response_too_large"
    assert "larger than" in caught.value.message


async def test_a_gzip_bomb_token_answer_is_refused_at_its_decoded_size(
    oauth_server: FakeOAuthProvider,
) -> None:
    tokens = oauth_server.issue_tokens(scopes=["repo"], expires_in=1)
    bomb = gzip.compress(_valid_but_huge_token_answer(4 * MAX_RESPONSE_BYTES))
    assert len(bomb) < MAX_RESPONSE_BYTES // 10
    oauth_server.queue_response(
        Response(200, bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
        path="/token",
    )
    with pytest.raises(OAuthRefreshError) as caught:
        await _provider(oauth_server.token_url, oauth_server).refresh(
            _credentials(tokens["refresh_token"]), timeout=5
        )
    assert caught.value.details["reason"] == "response_too_large"


@asynccontextmanager
async def _raw_token_endpoint(handle: RawHandler) -> AsyncIterator[str]:
    """A token endpoint on loopback that answers with *handle*'s raw bytes; yields its URL."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/token"


@pytest.fixture
async def chunked_server() -> AsyncIterator[tuple[str, dict[str, int]]]:
    """A token endpoint streaming a huge (valid) answer chunked, with no Content-Length."""
    answer = _valid_but_huge_token_answer(8 * MAX_RESPONSE_BYTES)
    sent = {"bytes": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )
            for start in range(0, len(answer), 65536):
                chunk = answer[start : start + 65536]
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                sent["bytes"] += len(chunk)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async with _raw_token_endpoint(handle) as url:
        yield url, sent


async def test_a_streamed_answer_without_length_is_cut_off_at_the_cap(
    chunked_server: tuple[str, dict[str, int]],
) -> None:
    url, sent = chunked_server
    with pytest.raises(OAuthRefreshError) as caught:
        await _provider(url).refresh(_credentials("rt_0123456789abcdef"), timeout=5)
    assert caught.value.details["reason"] == "response_too_large"
    # The client stopped reading: the server could not push the whole 8 MiB through.
    await asyncio.sleep(0.2)
    assert sent["bytes"] < 8 * MAX_RESPONSE_BYTES


async def test_a_normal_answer_under_the_cap_still_refreshes(
    oauth_server: FakeOAuthProvider,
) -> None:
    tokens = oauth_server.issue_tokens(scopes=["repo"], expires_in=1)
    oauth_server.queue_response(
        Response(
            200,
            _valid_but_huge_token_answer(MAX_RESPONSE_BYTES // 2),
            {"Content-Type": "application/json"},
        ),
        path="/token",
    )
    fresh = await _provider(oauth_server.token_url, oauth_server).refresh(
        _credentials(tokens["refresh_token"]), timeout=5
    )
    assert fresh.access_token.get_secret_value() == "at_huge_0123456789"


# --------------------------------------------------------------------------- timeouts


async def test_a_trickling_token_endpoint_times_out_as_a_transient_failure() -> None:
    """A byte every 0.1 s never trips a per-read timeout; the whole call has a deadline."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n"
            )
            for _ in range(100_000):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.1)
        except ConnectionError:
            pass
        finally:
            writer.close()

    async with _raw_token_endpoint(handle) as url:
        started = time.monotonic()
        # The outer bound only turns a hang (no deadline) into a clear failure.
        async with asyncio.timeout(15):
            with pytest.raises(OAuthRefreshError, match="Could not reach"):
                await _provider(url).refresh(_credentials("rt_0123456789abcdef"), timeout=1.0)
        assert time.monotonic() - started < 5
