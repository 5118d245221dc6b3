"""GithubReadIssueBlock against FakeGitHub over real sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blockpilot.blocks.library.github import GithubReadIssueBlock, parse_issue_url
from blockpilot.testing import FakeGitHub, LocalHTTPServer, Response

GH = GithubReadIssueBlock.id
TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
OAUTH_TOKEN = "gho_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(tokens={TOKEN, OAUTH_TOKEN}) as srv:
        srv.add_issue("octo", "demo", 1, "Crash on start", "It crashes.\nEvery time.", user="mona")
        srv.add_issue("octo", "demo", 2, "Empty body", None, user="hubot")
        yield srv


@pytest.fixture
def other() -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer() as srv:
        srv.add_route(
            "GET", "/repos/{owner}/{repo}/issues/{number}", Response.json({"title": "evil"})
        )
        yield srv


@pytest.fixture
async def gh_pilot(settings_factory, monkeypatch, make_pilot, github):
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_GITHUB_BASE_URL", github.base_url)
    # Other loopback ports stay blocked: only the operator-set API base is trusted.
    pilot = await make_pilot()
    user, _ = await pilot.users.create("alice")
    return pilot, user


async def _api_key(pilot, user, token: str = TOKEN) -> str:
    meta = await pilot.add_credentials(
        user.id, {"provider": "github", "type": "api_key", "api_key": token}
    )
    return meta.id


async def test_api_key_reads_issue_from_html_url(gh_pilot, run, github) -> None:
    pilot, alice = gh_pilot
    await _api_key(pilot, alice)
    r = await run(pilot, alice, GH, {"issue_url": "https://github.com/octo/demo/issues/1"})
    assert r["type"] == "block_output", r
    assert r["outputs"] == {
        "title": ["Crash on start"],
        "body": ["It crashes.\nEvery time."],
        "user": ["mona"],
    }
    req = github.last_request
    assert req.path == "/repos/octo/demo/issues/1"  # html URL mapped onto the API base
    assert req.header("authorization") == f"Bearer {TOKEN}"
    assert req.header("accept") == "application/vnd.github+json"
    assert github.tokens_used == [TOKEN]
    assert TOKEN not in str(r)


async def test_null_body_becomes_empty_string(gh_pilot, run, github) -> None:
    pilot, alice = gh_pilot
    await _api_key(pilot, alice)
    r = await run(pilot, alice, GH, {"issue_url": "https://github.com/octo/demo/issues/2/"})
    assert r["outputs"] == {"title": ["Empty body"], "body": [""], "user": ["hubot"]}


async def test_pull_request_url_and_api_url_on_api_host(gh_pilot, run, github) -> None:
    pilot, alice = gh_pilot
    await _api_key(pilot, alice)
    r = await run(pilot, alice, GH, {"issue_url": "https://github.com/octo/demo/pull/1"})
    assert r["outputs"]["title"] == ["Crash on start"]
    r = await run(pilot, alice, GH, {"issue_url": github.url("/repos/octo/demo/issues/2")})
    assert r["type"] == "block_output", r
    assert r["outputs"]["title"] == ["Empty body"]


async def test_oauth2_with_repo_scope_works(gh_pilot, run, github) -> None:
    pilot, alice = gh_pilot
    await pilot.add_credentials(
        alice.id,
        {
            "provider": "github",
            "type": "oauth2",
            "access_token": OAUTH_TOKEN,
            "scopes": ["repo", "read:user"],
        },
    )
    r = await run(pilot, alice, GH, {"issue_url": "https://github.com/octo/demo/issues/1"})
    assert r["type"] == "block_output", r
    assert github.last_request.header("authorization") == f"Bearer {OAUTH_TOKEN}"


async def test_oauth2_without_repo_scope_needs_setup(gh_pilot, run, github) -> None:
    pilot, alice = gh_pilot
    await pilot.add_credentials(
        alice.id,
        {
            "provider": "github",
            "type": "oauth2",
            "access_token": OAUTH_TOKEN,
            "scopes": ["read:user"],
        },
    )
    r = await run(pilot, alice, GH, {"issue_url": "https://github.com/octo/demo/issues/1"})
    assert r["type"] == "setup_requirements", r
    missing = r["setup_info"]["user_readiness"]["missing_credentials"]["credentials"]
    assert missing["provider"] == "github"
    assert missing["scopes"] == ["repo"]
    assert missing["types"] == ["api_key", "oauth2"]
    assert github.hits == 0


async def test_no_credentials_needs_setup(gh_pilot, run, github) -> None:
    pilot, alice = gh_pilot
    r = await run(pilot, alice, GH, {"issue_url": "https://github.com/octo/demo/issues/1"})
    assert r["type"] == "setup_requirements", r
    assert github.hits == 0


async def test_bad_token_is_block_error_without_token(gh_pilot, run, github) -> None:
    pilot, alice = gh_pilot
    bad = "ghp_" + "0" * 36
    await _api_key(pilot, alice, bad)
    r = await run(pilot, alice, GH, {"issue_url": "https://github.com/octo/demo/issues/1"})
    assert r["type"] == "error" and r["code"] == "block_failed", r
    assert "401" in r["message"] and "Bad credentials" in r["message"]
    assert bad not in str(r)


async def test_missing_issue_is_block_error(gh_pilot, run, github) -> None:
    pilot, alice = gh_pilot
    await _api_key(pilot, alice)
    r = await run(pilot, alice, GH, {"issue_url": "https://github.com/octo/demo/issues/999"})
    assert r["type"] == "error" and r["code"] == "block_failed", r
    assert "404" in r["message"]


async def test_foreign_or_malformed_urls_are_refused_without_requests(
    gh_pilot, run, github, other
) -> None:
    pilot, alice = gh_pilot
    await _api_key(pilot, alice)
    urls = [
        other.url("/repos/octo/demo/issues/1"),
        "https://evil.com/octo/demo/issues/1",
        "https://evil.com/repos/octo/demo/issues/1",
        "https://github.com.evil.com/octo/demo/issues/1",
        "https://github.com@evil.com/octo/demo/issues/1",
        f"https://github.com:{other.port}/octo/demo/issues/1",
        "http://github.com/octo/demo/issues/1",
        "https://github.com/octo/demo/issues/1/../../../x",
        "https://github.com/../demo/issues/1",
        "https://github.com/octo/demo/wiki/1",
        "javascript:alert(1)",
        "not a url",
    ]
    for url in urls:
        r = await run(pilot, alice, GH, {"issue_url": url})
        assert r["type"] == "error" and r["code"] == "block_failed", (url, r)
        assert "issue_url" in r["message"]
        assert TOKEN not in str(r)
    assert other.hits == 0
    assert github.hits == 0


async def test_api_host_url_with_other_port_is_refused(gh_pilot, run, github, other) -> None:
    pilot, alice = gh_pilot
    await _api_key(pilot, alice)
    url = f"http://127.0.0.1:{other.port}/repos/octo/demo/issues/1"
    r = await run(pilot, alice, GH, {"issue_url": url})
    assert r["type"] == "error", r
    assert other.hits == 0 and github.hits == 0


def test_parse_issue_url_mapping() -> None:
    api = "https://api.github.com"
    assert parse_issue_url("https://github.com/o/r/issues/1", api) == ("o", "r", 1)
    assert parse_issue_url("  https://GitHub.com/o/r/issues/12/  ", api) == ("o", "r", 12)
    assert parse_issue_url("https://api.github.com/repos/o/r/issues/3", api) == ("o", "r", 3)
    assert parse_issue_url(
        "https://ghe.corp/api/v3/repos/o/r/issues/4", "https://ghe.corp/api/v3"
    ) == ("o", "r", 4)
    assert parse_issue_url("https://github.com/o/r/issues/1x", api) is None
    assert parse_issue_url("https://github.com/o/r/issues/99999999999", api) is None
    assert parse_issue_url("https://[::1/o/r/issues/1", api) is None


def test_api_url_outside_the_api_base_path_is_refused() -> None:
    # Regression: the base path was stripped with removeprefix, so a URL on the API host
    # but outside its path prefix (GitHub Enterprise /api/v3) was accepted as an API URL.
    base = "https://ghe.corp/api/v3"
    assert parse_issue_url("https://ghe.corp/repos/o/r/issues/4", base) is None
    assert parse_issue_url("https://ghe.corp/api/v3x/repos/o/r/issues/4", base) is None
    assert parse_issue_url("https://ghe.corp/api/v3/repos/o/r/issues/4", base) == ("o", "r", 4)
