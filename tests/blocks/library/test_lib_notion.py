"""Notion blocks against FakeNotion over real sockets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from blockpilot.blocks.library import notion as n
from blockpilot.testing import FakeNotion

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

TOKEN = "secret_" + "CanaryNotionIntegrationToken0123456789"


@pytest.fixture
def notion() -> Iterator[FakeNotion]:
    with FakeNotion({TOKEN}) as srv:
        srv.add_page("Roadmap", [("heading_1", "Q1"), ("bulleted_list_item", "Ship"),
                                 ("paragraph", "Details")])  # fmt: skip
        srv.add_database(
            "Tasks",
            [{"Name": f"Task {i}", "Status": {"select": {"name": "Done"}}} for i in range(3)],
        )
        yield srv


@pytest.fixture
async def env(make_pilot, monkeypatch, notion, other):
    allowed = [f"127.0.0.1:{other.port}"]
    return await provider_pilot(
        make_pilot, monkeypatch, {"notion": notion.base_url}, allowed=allowed
    )


def _ids(srv: FakeNotion) -> tuple[str, str]:
    page = next(p["id"] for p in srv.pages.values() if p["parent"].get("type") == "workspace")
    database = next(d["id"] for d in srv.databases.values())
    return page, database


Case = Callable[[str, str], tuple[dict[str, Any], Callable[[dict[str, Any], FakeNotion], bool]]]
CASES: dict[type, Case] = {
    n.NotionSearchBlock: lambda page, db: (
        {"query": "road"},
        lambda out, srv: [r["title"] for r in out["results"][0]] == ["Roadmap"],
    ),
    n.NotionReadPageMarkdownBlock: lambda page, db: (
        {"page_id": f"https://www.notion.so/acme/Roadmap-{page.replace('-', '')}"},
        lambda out, srv: (
            out["markdown"] == ["# Q1\n\n- Ship\n\nDetails"] and out["title"] == ["Roadmap"]
        ),
    ),
    n.NotionReadDatabaseBlock: lambda page, db: (
        {"database_id": db},
        lambda out, srv: out["count"] == [3] and out["entries"][0][0]["Status"] == "Done",
    ),
    n.NotionCreatePageBlock: lambda page, db: (
        {"parent_database_id": db, "title": "Task 9", "content": "# Plan\n- one\nText"},
        lambda out, srv: (
            [b["type"] for b in srv.children[out["page_id"][0].replace("-", "")]]
            == ["heading_1", "bulleted_list_item", "paragraph"]
        ),
    ),
}
BLOCKS = list(CASES)
IDS = [b.__name__ for b in BLOCKS]


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_block_works(env, notion, block) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "notion", TOKEN)
    data, check = CASES[block](*_ids(notion))
    out = assert_ok(await run(pilot, alice, block.id, data))
    assert check(out, notion), out
    for request in notion.requests:
        assert request.header("authorization") == f"Bearer {TOKEN}"
        assert request.header("notion-version") == "2022-06-28"


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_missing_credential_needs_setup(env, notion, block) -> None:
    pilot, alice, _ = env
    data, _ = CASES[block](*_ids(notion))
    missing = missing_credentials(await run(pilot, alice, block.id, data))
    assert missing["provider"] == "notion" and missing["types"] == ["api_key", "oauth2"]
    await add_oauth(pilot, alice, "notion", TOKEN, [])  # Notion OAuth has no scopes
    assert_ok(await run(pilot, alice, block.id, data))


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_upstream_errors_are_typed(env, notion, block) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "notion", TOKEN)
    data, _ = CASES[block](*_ids(notion))
    notion.fail_next(502, "Bad gateway")
    assert_failed(await run(pilot, alice, block.id, data), "Notion API returned HTTP 502")
    notion.rate_limit_next(retry_after=3)
    assert_failed(await run(pilot, alice, block.id, data), "Notion rate limit", "3 seconds")
    notion.revoke_token(TOKEN)
    assert_failed(await run(pilot, alice, block.id, data), "HTTP 401", "API token is invalid")


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_token_never_reaches_another_host(env, notion, other, block) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "notion", TOKEN)
    data, _ = CASES[block](*_ids(notion))
    redirect_everything(notion, other)
    await run(pilot, alice, block.id, data)
    assert TOKEN not in headers_seen(other)


async def test_ids_are_checked_and_long_pages_are_split(env, notion) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "notion", TOKEN)
    page, _ = _ids(notion)
    for bad in ("../../v1/users", "https://evil.com/x", "not-an-id"):
        r = await run(pilot, alice, n.NotionReadPageMarkdownBlock.id, {"page_id": bad})
        assert_failed(r, "page_id")
    both = {"parent_page_id": page, "parent_database_id": page, "title": "x"}
    assert_failed(await run(pilot, alice, n.NotionCreatePageBlock.id, both), "exactly one")
    assert notion.hits == 0
    content = "\n".join(f"line {i}" for i in range(250))
    data = {"parent_page_id": page, "title": "Long", "content": content}
    out = assert_ok(await run(pilot, alice, n.NotionCreatePageBlock.id, data))
    assert len(notion.children[out["page_id"][0].replace("-", "")]) == 250
    assert [r.method for r in notion.requests] == ["POST", "PATCH", "PATCH"]
    r = await run(pilot, alice, n.NotionReadPageMarkdownBlock.id, {"page_id": out["page_id"][0]})
    assert assert_ok(r)["markdown"][0].count("line ") == 250  # read back over three pages
