"""Linear blocks against FakeLinear (GraphQL) over real sockets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from blockpilot.blocks.library import linear as lin
from blockpilot.testing import FakeLinear

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

KEY = "lin_api_" + "CanaryLinearKey0123456789abcdef"


@pytest.fixture
def linear() -> Iterator[FakeLinear]:
    with FakeLinear({KEY}) as srv:
        srv.add_team("Engineering", "ENG")
        srv.add_project("Launch")
        srv.add_issue("ENG", "Fix login bug", description="Users cannot log in", project="Launch")
        srv.add_issue("ENG", "Write docs", state="In Progress", project="Launch")
        srv.add_issue("ENG", "Unrelated", project=None)
        yield srv


@pytest.fixture
async def env(make_pilot, monkeypatch, linear, other):
    allowed = [f"127.0.0.1:{other.port}"]
    return await provider_pilot(
        make_pilot, monkeypatch, {"linear": linear.base_url}, allowed=allowed
    )


Check = Callable[[dict[str, list[Any]], FakeLinear], bool]
CASES: dict[type, tuple[dict[str, Any], str, Check]] = {
    lin.LinearSearchIssuesBlock: (
        {"term": "login"},
        "read",
        lambda out, srv: [i["identifier"] for i in out["issues"][0]] == ["ENG-1"],
    ),
    lin.LinearCreateIssueBlock: (
        {"title": "New bug", "team_name": "engineering", "project_name": "Launch", "priority": 2},
        "issues:create",
        lambda out, srv: (
            out["identifier"] == ["ENG-4"] and srv.issues[-1]["project"] == {"name": "Launch"}
        ),
    ),
    lin.LinearCreateCommentBlock: (
        {"issue_id": "ENG-1", "comment": "Looking into it"},
        "comments:create",
        lambda out, srv: srv.comments[-1]["body"] == "Looking into it",
    ),
    lin.LinearGetProjectIssuesBlock: (
        {"project": "launch", "status": "in progress"},
        "read",
        lambda out, srv: [i["title"] for i in out["issues"][0]] == ["Write docs"],
    ),
}
BLOCKS = list(CASES)
IDS = [b.__name__ for b in BLOCKS]


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_block_works_with_an_api_key(env, linear, block) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "linear", KEY)
    data, _, check = CASES[block]
    out = assert_ok(await run(pilot, alice, block.id, data))
    assert check(out, linear), out
    # Linear takes personal API keys without a scheme.
    assert all(r.header("authorization") == KEY for r in linear.requests)


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_oauth_needs_the_scope(env, linear, block) -> None:
    pilot, alice, bob = env
    data, scope, check = CASES[block]
    await add_oauth(pilot, bob, "linear", KEY, ["other"])
    for user in (alice, bob):
        missing = missing_credentials(await run(pilot, user, block.id, data))
        assert missing["provider"] == "linear" and missing["scopes"] == [scope]
    assert linear.hits == 0
    await add_oauth(pilot, alice, "linear", KEY, [scope])
    assert_ok(await run(pilot, alice, block.id, data))
    assert linear.last_request.header("authorization") == f"Bearer {KEY}"


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_upstream_errors_are_typed(env, linear, block) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "linear", KEY)
    data = CASES[block][0]
    linear.fail_next(500, "Internal error")
    assert_failed(await run(pilot, alice, block.id, data), "Internal error")
    linear.rate_limit_next()
    assert_failed(await run(pilot, alice, block.id, data), "Linear rate limit")
    linear.revoke_token(KEY)
    r = await run(pilot, alice, block.id, data)
    assert_failed(r, "Authentication required")
    assert KEY not in str(r)


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_key_never_reaches_another_host(env, linear, other, block) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "linear", KEY)
    redirect_everything(linear, other)
    await run(pilot, alice, block.id, CASES[block][0])
    assert KEY not in headers_seen(other)


async def test_pages_names_and_graphql_errors(env, linear) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "linear", KEY)
    for i in range(70):
        linear.add_issue("ENG", f"Batch login {i}")
    linear.reset()
    r = await run(
        pilot, alice, lin.LinearSearchIssuesBlock.id, {"term": "login", "max_results": 60}
    )
    assert len(assert_ok(r)["issues"][0]) == 60
    sent = [req.json()["variables"] for req in linear.requests]
    assert [v["first"] for v in sent] == [50, 10] and sent[1]["after"] == "50"
    data = {"title": "x", "team_name": "Nope"}
    assert_failed(await run(pilot, alice, lin.LinearCreateIssueBlock.id, data), "No Linear team")
    data = {"issue_id": "ENG-999", "comment": "x"}
    assert_failed(await run(pilot, alice, lin.LinearCreateCommentBlock.id, data), "not found")
