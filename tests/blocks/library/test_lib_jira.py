"""Jira blocks against FakeJira: the API token is bound to the site's host."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from blockpilot.blocks.library import jira as j
from blockpilot.testing import FakeJira
from blockpilot.testing.jira import basic_auth

from .lib_provider_helpers import (
    assert_failed,
    assert_ok,
    headers_seen,
    missing_credentials,
    provider_pilot,
    redirect_everything,
    run,
)

TOKEN = "ATATT3x" + "CanaryJiraApiToken0123456789"
EMAIL = "me@acme.com"


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira({TOKEN}, projects=["ENG"]) as srv:
        srv.add_issue("ENG", "Login fails", status="In Progress")
        srv.add_issue("ENG", "Docs missing")
        yield srv


@pytest.fixture
async def env(make_pilot, monkeypatch, jira, other):
    allowed = [f"127.0.0.1:{other.port}"]
    return await provider_pilot(make_pilot, monkeypatch, {"jira": jira.base_url}, allowed=allowed)


async def add_site_token(pilot, user, host: str, token: str = TOKEN) -> str:
    meta = await pilot.add_credentials(
        user.id,
        {
            "provider": "jira",
            "type": "host_scoped",
            "host": host,
            "headers": {"Authorization": basic_auth(EMAIL, token)},
        },
    )
    return meta.id


Check = Callable[[dict[str, list[Any]], FakeJira], bool]
CASES: dict[type, tuple[dict[str, Any], Check]] = {
    j.JiraSearchIssuesBlock: (
        {"jql": 'project = ENG AND status = "In Progress"'},
        lambda out, srv: (
            [(i["key"], i["status"]) for i in out["issues"][0]] == [("ENG-1", "In Progress")]
        ),
    ),
    j.JiraCreateIssueBlock: (
        {
            "project_key": "ENG",
            "summary": "New",
            "description": "Line 1\nLine 2",
            "issue_type": "Bug",
        },
        lambda out, srv: (
            out["key"] == ["ENG-3"] and len(srv.issues[-1]["fields"]["description"]["content"]) == 2
        ),
    ),
    j.JiraAddCommentBlock: (
        {"issue_key": "ENG-1", "comment": "On it"},
        lambda out, srv: srv.comments[-1]["text"] == "On it" and out["comment_id"] == ["20000"],
    ),
}
BLOCKS = list(CASES)
IDS = [b.__name__ for b in BLOCKS]


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_block_works_on_the_credentials_site(env, jira, block) -> None:
    pilot, alice, _ = env
    await add_site_token(pilot, alice, f"127.0.0.1:{jira.port}")
    data, check = CASES[block]
    out = assert_ok(await run(pilot, alice, block.id, {"site_url": jira.base_url, **data}))
    assert check(out, jira), out
    assert jira.tokens_used and set(jira.tokens_used) == {TOKEN}
    assert TOKEN not in str(out)


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_missing_credential_needs_a_token_for_the_site(env, jira, block) -> None:
    pilot, alice, bob = env
    await add_site_token(pilot, bob, "acme.atlassian.net")  # another site's token
    data = {"site_url": jira.base_url, **CASES[block][0]}
    for user in (alice, bob):
        missing = missing_credentials(await run(pilot, user, block.id, data))
        assert missing["provider"] == "jira" and missing["types"] == ["host_scoped"]
    assert jira.hits == 0


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_upstream_errors_are_typed(env, jira, block) -> None:
    pilot, alice, _ = env
    await add_site_token(pilot, alice, f"127.0.0.1:{jira.port}")
    data = {"site_url": jira.base_url, **CASES[block][0]}
    jira.fail_next(503, "Service unavailable")
    assert_failed(await run(pilot, alice, block.id, data), "Jira API returned HTTP 503")
    jira.rate_limit_next(retry_after=9)
    assert_failed(await run(pilot, alice, block.id, data), "Jira rate limit", "9 seconds")
    jira.revoke_token(TOKEN)
    assert_failed(await run(pilot, alice, block.id, data), "HTTP 401", "must be authenticated")


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_token_only_goes_to_its_site(env, jira, other, block) -> None:
    pilot, alice, _ = env
    await add_site_token(pilot, alice, f"127.0.0.1:{jira.port}")
    # Another site (even one the guard lets through) matches no credential: nothing is sent.
    data = {"site_url": other.base_url, **CASES[block][0]}
    missing_credentials(await run(pilot, alice, block.id, data))
    assert other.hits == 0
    redirect_everything(jira, other)
    await run(pilot, alice, block.id, {"site_url": jira.base_url, **CASES[block][0]})
    assert TOKEN not in headers_seen(other)
    assert basic_auth(EMAIL, TOKEN) not in headers_seen(other)


def test_site_urls() -> None:
    assert j.site_origin("https://acme.atlassian.net/jira/browse/X-1", None) == (
        "https://acme.atlassian.net"
    )
    assert j.site_origin("http://127.0.0.1:9/", "http://127.0.0.1:9") == "http://127.0.0.1:9"
    for bad in (
        "http://acme.atlassian.net",
        "https://evil.com",
        "https://acme.atlassian.net.evil.com",
        "https://a.b.atlassian.net",
        "https://user@acme.atlassian.net",
        "acme",
    ):
        with pytest.raises(Exception, match="site_url"):
            j.site_origin(bad, None)


async def test_jql_errors_and_pages(env, jira) -> None:
    pilot, alice, _ = env
    await add_site_token(pilot, alice, f"127.0.0.1:{jira.port}")
    for i in range(130):
        jira.add_issue("ENG", f"Bulk {i}")
    jira.reset()
    data = {"site_url": jira.base_url, "jql": "project = ENG", "max_results": 120}
    out = assert_ok(await run(pilot, alice, j.JiraSearchIssuesBlock.id, data))
    assert len(out["issues"][0]) == 120
    assert [r.query.get("nextPageToken") for r in jira.requests] == [None, "100"]
    data["jql"] = "nonsense((("
    assert_failed(await run(pilot, alice, j.JiraSearchIssuesBlock.id, data), "HTTP 400", "JQL")
    data = {"site_url": jira.base_url, "project_key": "NOPE", "summary": "x"}
    assert_failed(await run(pilot, alice, j.JiraCreateIssueBlock.id, data), "valid project")
