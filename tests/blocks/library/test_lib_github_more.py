"""The GitHub blocks beyond reading an issue, against FakeGitHub over real sockets: success,
a missing credential, upstream errors and rate limits, and URLs or redirects to other hosts."""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from blockpilot.blocks.base import BlockEffect
from blockpilot.blocks.library import github as gh
from blockpilot.testing import FakeGitHub

from .lib_provider_helpers import (
    add_key,
    add_oauth,
    assert_failed,
    assert_ok,
    headers_seen,
    missing_credentials,
    provider_pilot,
    redirect_everything,
    run,
)

TOKEN = "ghp_" + "Canary0123456789abcdefghijklmnopqrstu"
REPO = "https://github.com/octo/demo"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(tokens={TOKEN}) as srv:
        srv.add_repo("octo", "demo", description="A demo", stars=42, language="Python")
        srv.add_branch("octo", "demo", "feature")
        srv.add_file("octo", "demo", "README.md", "hello world\nTODO: write docs\n")
        srv.add_file("octo", "demo", "src/app.py", "def parse_config():\n    pass\n")
        srv.add_issue("octo", "demo", 1, "Crash on start", "It crashes.")
        srv.add_issue("octo", "demo", 2, "Old bug", "", state="closed")
        srv.add_pull("octo", "demo", 3, "Add docs", files=[("README.md", "@@\n+docs")])
        yield srv


@pytest.fixture
async def env(make_pilot, monkeypatch, github, other):
    # Approvals are tested below; here destructive blocks run without asking.
    no_review = functools.partial(make_pilot, policy_ask_effects=())
    allowed = [f"127.0.0.1:{other.port}"]
    return await provider_pilot(
        no_review, monkeypatch, {"github": github.base_url}, allowed=allowed
    )


Check = Callable[[dict[str, list[Any]], FakeGitHub], None]


def _file_is(path: str, text: str) -> Check:
    def check(out: dict[str, list[Any]], srv: FakeGitHub) -> None:
        assert srv.file("octo", "demo", path) == text.encode()
        assert out["sha"][0] and "github.com/octo/demo/blob/main/" in out["url"][0]

    return check


CASES: dict[type, tuple[dict[str, Any], Check]] = {
    gh.GithubListIssuesBlock: (
        {"repo_url": REPO},
        lambda out, srv: [i["title"] for i in out["issues"][0]] == ["Crash on start"],
    ),
    gh.GithubMakeIssueBlock: (
        {"repo_url": "octo/demo", "title": "New", "body": "Body"},
        lambda out, srv: srv.issue("octo", "demo", out["number"][0])["title"] == "New",
    ),
    gh.GithubCommentBlock: (
        {"issue_url": f"{REPO}/issues/1", "comment": "On it"},
        lambda out, srv: srv.comments[-1]["body"] == "On it" and out["id"][0] > 0,
    ),
    gh.GithubAddLabelBlock: (
        {"issue_url": f"{REPO}/issues/1", "label": "bug"},
        lambda out, srv: out["labels"] == [["bug"]],
    ),
    gh.GithubListPullRequestsBlock: (
        {"repo_url": REPO},
        lambda out, srv: out["pull_requests"][0][0]["head"] == "feature",
    ),
    gh.GithubReadPullRequestBlock: (
        {"pr_url": f"{REPO}/pull/3", "include_pr_changes": True},
        lambda out, srv: out["title"] == ["Add docs"] and "+docs" in out["changes"][0],
    ),
    gh.GithubMakePullRequestBlock: (
        {"repo_url": REPO, "title": "Feature", "head": "feature", "base": "main"},
        lambda out, srv: srv.pull("octo", "demo", out["number"][0])["head"]["ref"] == "feature",
    ),
    gh.GithubMergePullRequestBlock: (
        {"pr_url": f"{REPO}/pull/3", "merge_method": "squash"},
        lambda out, srv: out["merged"] == [True] and srv.pull("octo", "demo", 3)["merged"],
    ),
    gh.GithubReadFileBlock: (
        {"repo_url": REPO, "file_path": "src/app.py"},
        lambda out, srv: out["text_content"] == ["def parse_config():\n    pass\n"],
    ),
    gh.GithubCreateFileBlock: (
        {"repo_url": REPO, "file_path": "docs/new file.md", "content": "# New"},
        _file_is("docs/new file.md", "# New"),
    ),
    gh.GithubUpdateFileBlock: (
        {"repo_url": REPO, "file_path": "README.md", "content": "rewritten"},
        _file_is("README.md", "rewritten"),
    ),
    gh.GithubSearchCodeBlock: (
        {"query": "parse_config", "repo_url": "octo/demo"},
        lambda out, srv: [r["path"] for r in out["results"][0]] == ["src/app.py"],
    ),
    gh.GithubGetRepositoryInfoBlock: (
        {"repo_url": f"{REPO}.git"},
        lambda out, srv: out["stars"] == [42] and out["default_branch"] == ["main"],
    ),
    gh.GithubListBranchesBlock: (
        {"repo_url": REPO},
        lambda out, srv: [b["name"] for b in out["branches"][0]] == ["feature", "main"],
    ),
}
BLOCKS = list(CASES)
IDS = [b.__name__ for b in BLOCKS]


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_block_works_with_a_token(env, github, block) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "github", TOKEN)
    data, check = CASES[block]
    out = assert_ok(await run(pilot, alice, block.id, data))
    assert check(out, github) is not False, out
    assert set(github.tokens_used) == {TOKEN}
    assert all(r.header("authorization") == f"Bearer {TOKEN}" for r in github.requests)
    assert TOKEN not in str(out)


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_missing_credential_asks_for_github_with_repo_scope(env, github, block) -> None:
    pilot, alice, bob = env
    await add_oauth(pilot, bob, "github", TOKEN, ["read:user"])  # lacks "repo"
    for user in (alice, bob):
        missing = missing_credentials(await run(pilot, user, block.id, CASES[block][0]))
        assert missing["provider"] == "github"
        assert missing["scopes"] == ["repo"]
        assert missing["types"] == ["api_key", "oauth2"]
    assert github.hits == 0


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_upstream_errors_and_rate_limits_are_typed(env, github, block) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "github", TOKEN)
    data = CASES[block][0]
    github.fail_next(502, "Server Error")
    assert_failed(await run(pilot, alice, block.id, data), "GitHub API returned HTTP 502")
    github.rate_limit_next(reset_in=120)
    assert_failed(await run(pilot, alice, block.id, data), "GitHub rate limit reached")
    github.revoke_token(TOKEN)
    r = await run(pilot, alice, block.id, data)
    assert_failed(r, "HTTP 401", "Bad credentials", "reconnect")
    assert TOKEN not in str(r)


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_token_never_reaches_another_host(env, github, other, block) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "github", TOKEN)
    data = dict(CASES[block][0])
    # A URL input naming another host is refused before any request.
    for field in ("repo_url", "issue_url", "pr_url"):
        if field in data:
            foreign = {**data, field: other.url("/repos/octo/demo/issues/1")}
            assert_failed(await run(pilot, alice, block.id, foreign), field)
    assert other.hits == 0
    # A redirect from the API to another host never carries the token.
    redirect_everything(github, other)
    await run(pilot, alice, block.id, data)
    assert TOKEN not in headers_seen(other)


def test_effects_are_declared() -> None:
    assert gh.GithubMergePullRequestBlock.effect is BlockEffect.DESTRUCTIVE
    reads = {b for b in BLOCKS if b.effect is BlockEffect.READ}
    assert reads == {
        gh.GithubListIssuesBlock, gh.GithubListPullRequestsBlock, gh.GithubReadPullRequestBlock,
        gh.GithubReadFileBlock, gh.GithubSearchCodeBlock, gh.GithubGetRepositoryInfoBlock,
        gh.GithubListBranchesBlock,
    }  # fmt: skip


async def test_lists_follow_pages_up_to_the_limit(env, github) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "github", TOKEN)
    for n in range(10, 160):
        github.add_issue("octo", "demo", n, f"Issue {n}")
    github.reset()
    data = {"repo_url": REPO, "limit": 120}
    out = assert_ok(await run(pilot, alice, gh.GithubListIssuesBlock.id, data))
    assert len(out["issues"][0]) == 120
    assert [r.query["page"] for r in github.requests] == ["1", "2"]
    assert all(r.query["per_page"] == "100" for r in github.requests)


async def test_files_paths_and_conflicts(env, github) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "github", TOKEN)
    create = gh.GithubCreateFileBlock.id
    exists = {"repo_url": REPO, "file_path": "README.md", "content": "x"}
    assert_failed(await run(pilot, alice, create, exists), "HTTP 422", "sha")
    update = gh.GithubUpdateFileBlock.id
    missing = {"repo_url": REPO, "file_path": "nope.md", "content": "x"}
    assert_failed(await run(pilot, alice, update, missing), "HTTP 404")
    for bad in ("../secrets", "a/../../b", "", "/"):
        data = {"repo_url": REPO, "file_path": bad}
        assert_failed(await run(pilot, alice, gh.GithubReadFileBlock.id, data), "file_path")
    data = {"repo_url": REPO, "file_path": "src"}
    assert_failed(await run(pilot, alice, gh.GithubReadFileBlock.id, data), "directory")
    on_branch = {**exists, "file_path": "b.txt", "branch": "feature"}
    assert_ok(await run(pilot, alice, create, on_branch))
    assert github.file("octo", "demo", "b.txt", branch="feature") == b"x"
    put = github.requests[-1].json()
    assert put["branch"] == "feature" and base64.b64decode(put["content"]) == b"x"


async def test_merge_refusal_is_reported(env, github) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "github", TOKEN)
    github.add_pull("octo", "demo", 9, "Conflicts", mergeable=False)
    data = {"pr_url": f"{REPO}/pull/9"}
    r = await run(pilot, alice, gh.GithubMergePullRequestBlock.id, data)
    assert_failed(r, "HTTP 405", "not mergeable")


def test_repo_and_pull_url_parsing() -> None:
    api = "https://api.github.com"
    assert gh.parse_repo_url("octo/demo", api) == ("octo", "demo")
    assert gh.parse_repo_url("https://github.com/octo/demo/", api) == ("octo", "demo")
    assert gh.parse_repo_url("https://api.github.com/repos/octo/demo", api) == ("octo", "demo")
    assert gh.parse_pull_url("https://github.com/o/r/pull/7/files", api) == ("o", "r", 7)
    assert gh.parse_pull_url("https://api.github.com/repos/o/r/pulls/7", api) == ("o", "r", 7)
    for bad in ("../demo", "octo/..", "https://evil.com/octo/demo", "octo/demo/extra", "x"):
        assert gh.parse_repo_url(bad, api) is None, bad
    assert gh.parse_pull_url("https://github.com/o/r/issues/7", api) is None


async def test_merging_needs_approval_by_default(make_pilot, monkeypatch, github) -> None:
    pilot, alice, _ = await provider_pilot(make_pilot, monkeypatch, {"github": github.base_url})
    await add_key(pilot, alice, "github", TOKEN)
    r = await run(pilot, alice, gh.GithubMergePullRequestBlock.id, {"pr_url": f"{REPO}/pull/3"})
    assert r["type"] == "review_required" and r["effect"] == "destructive", r
    assert github.hits == 0 and not github.pull("octo", "demo", 3)["merged"]


async def test_secondary_rate_limit_is_a_rate_limit(env, github) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "github", TOKEN)
    limited = github.error_response(
        403, "You have exceeded a secondary rate limit.", {"Retry-After": "42"}
    )
    github.queue_response(limited)
    r = await run(pilot, alice, gh.GithubListBranchesBlock.id, {"repo_url": REPO})
    assert_failed(r, "GitHub rate limit reached (HTTP 403)", "42 seconds")
    github.queue_response(github.error_response(403, "Resource not accessible by integration"))
    r = await run(pilot, alice, gh.GithubListBranchesBlock.id, {"repo_url": REPO})
    assert_failed(r, "HTTP 403", "Resource not accessible", "lacks access")
