"""Gmail, Calendar, Sheets and Docs blocks against FakeGoogle over real sockets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from blockpilot.blocks.library import google as g
from blockpilot.testing import FakeGoogle

from .lib_provider_helpers import (
    add_oauth,
    assert_failed,
    assert_ok,
    headers_seen,
    missing_credentials,
    provider_pilot,
    redirect_everything,
    run,
)

TOKEN = "ya29." + "CanaryGoogleAccessToken0123456789"
SHEET = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"
DOC = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle({TOKEN: None}) as srv:
        srv.add_message("Invoice 42", "Please pay invoice 42.", sender="billing@acme.com")
        srv.add_message("Lunch?", "Lunch at noon?", unread=False)
        srv.add_event("Standup", "2030-01-06T09:00:00+00:00", "2030-01-06T09:15:00+00:00")
        srv.add_event("Review", "2030-01-07T14:00:00+00:00", "2030-01-07T15:00:00+00:00")
        srv.add_sheet(SHEET, "Sheet1", [["Name", "Amount"], ["Ann", "10"], ["Bob", "20"]])
        srv.add_document(DOC, "Plan", ["Goals", "Ship it"])
        yield srv


@pytest.fixture
async def env(make_pilot, monkeypatch, google, other):
    allowed = [f"127.0.0.1:{other.port}"]
    return await provider_pilot(
        make_pilot, monkeypatch, {"google": google.base_url}, allowed=allowed
    )


Check = Callable[[dict[str, list[Any]], FakeGoogle], bool]
MAIL = {"to": "bob@example.com", "subject": "Hello", "body": "Hi Bob"}

CASES: dict[type, tuple[dict[str, Any], str, Check]] = {
    g.GmailReadBlock: (
        {"query": "is:unread invoice"},
        g.GMAIL_READONLY,
        lambda out, srv: (
            [(e["subject"], e["from"], e["body"]) for e in out["emails"][0]]
            == [("Invoice 42", "billing@acme.com", "Please pay invoice 42.")]
        ),
    ),
    g.GmailSendBlock: (
        MAIL,
        g.GMAIL_SEND,
        lambda out, srv: (
            srv.sent[-1]["To"] == "bob@example.com"
            and srv.sent[-1].get_content().strip() == "Hi Bob"
            and out["status"] == ["sent"]
        ),
    ),
    g.GmailCreateDraftBlock: (
        {**MAIL, "cc": "carol@example.com"},
        g.GMAIL_COMPOSE,
        lambda out, srv: srv.drafts[-1]["Cc"] == "carol@example.com" and out["draft_id"] == ["r-1"],
    ),
    g.GoogleCalendarReadEventsBlock: (
        {"start_time": "2030-01-01T00:00:00Z"},
        g.CALENDAR_READONLY,
        lambda out, srv: [e["title"] for e in out["events"][0]] == ["Standup", "Review"],
    ),
    g.GoogleCalendarCreateEventBlock: (
        {
            "event_title": "Demo",
            "start_time": "2030-02-01T10:00:00+01:00",
            "end_time": "2030-02-01T11:00:00+01:00",
            "guest_emails": ["ann@example.com"],
        },
        g.CALENDAR_EVENTS,
        lambda out, srv: (
            srv.events["primary"][-1]["attendees"] == [{"email": "ann@example.com"}]
            and srv.events["primary"][-1]["sendUpdates"] == "all"
            and out["event_id"] == ["evt3"]
        ),
    ),
    g.GoogleSheetsReadBlock: (
        {
            "spreadsheet_id": f"https://docs.google.com/spreadsheets/d/{SHEET}/edit#gid=0",
            "range": "Sheet1!A2:B3",
        },
        g.SHEETS_READONLY,
        lambda out, srv: out["result"] == [[["Ann", "10"], ["Bob", "20"]]],
    ),  # fmt: skip
    g.GoogleSheetsAppendBlock: (
        {"spreadsheet_id": SHEET, "values": [["Cy", "30"]]},
        g.SHEETS,
        lambda out, srv: (
            srv.sheets[SHEET]["Sheet1"][-1] == ["Cy", "30"]
            and out["updated_range"] == ["Sheet1!A4:B4"]
        ),
    ),
    g.GoogleDocsReadBlock: (
        {"document_id": f"https://docs.google.com/document/d/{DOC}/edit"},
        g.DOCS_READONLY,
        lambda out, srv: out["title"] == ["Plan"] and out["text"] == ["Goals\nShip it\n"],
    ),
}
BLOCKS = list(CASES)
IDS = [b.__name__ for b in BLOCKS]


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_block_works_with_its_scope(env, google, block) -> None:
    pilot, alice, _ = env
    data, scope, check = CASES[block]
    google.allow_token(TOKEN, scopes=[scope])  # the token carries only this block's scope
    await add_oauth(pilot, alice, "google", TOKEN, [scope])
    out = assert_ok(await run(pilot, alice, block.id, data))
    assert check(out, google), out
    assert all(r.header("authorization") == f"Bearer {TOKEN}" for r in google.requests)
    assert TOKEN not in str(out)


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_missing_credential_asks_for_the_scope(env, google, block) -> None:
    pilot, alice, bob = env
    data, scope, _ = CASES[block]
    await add_oauth(pilot, bob, "google", TOKEN, [g.DOCS_READONLY + "x"])  # another scope
    for user in (alice, bob):
        missing = missing_credentials(await run(pilot, user, block.id, data))
        assert missing["provider"] == "google"
        assert missing["scopes"] == [scope]
        assert missing["types"] == ["oauth2"]
    assert google.hits == 0


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_upstream_errors_are_typed(env, google, block) -> None:
    pilot, alice, _ = env
    data, scope, _ = CASES[block]
    await add_oauth(pilot, alice, "google", TOKEN, [scope])
    google.fail_next(500, "Backend Error")
    assert_failed(await run(pilot, alice, block.id, data), "HTTP 500", "Backend Error")
    google.rate_limit_next(retry_after=7)
    assert_failed(await run(pilot, alice, block.id, data), "rate limit", "7 seconds")
    google.allow_token(TOKEN, scopes=[g.DOCS_READONLY + "x"])  # the grant was narrowed
    r = await run(pilot, alice, block.id, data)
    assert_failed(r, "HTTP 403", "insufficient authentication scopes")
    assert TOKEN not in str(r)


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_token_never_reaches_another_host(env, google, other, block) -> None:
    pilot, alice, _ = env
    data, scope, _ = CASES[block]
    await add_oauth(pilot, alice, "google", TOKEN, [scope])
    for field in ("spreadsheet_id", "document_id"):
        if field in data:  # an id given as a URL on another host is refused unsent
            foreign = {**data, field: other.url(f"/spreadsheets/d/{SHEET}")}
            assert_failed(await run(pilot, alice, block.id, foreign), field)
    redirect_everything(google, other)
    await run(pilot, alice, block.id, data)
    assert TOKEN not in headers_seen(other)


async def test_gmail_pages_and_header_injection(env, google) -> None:
    pilot, alice, _ = env
    await add_oauth(pilot, alice, "google", TOKEN, [g.GMAIL_READONLY, g.GMAIL_SEND])
    for n in range(120):
        google.add_message(f"Note {n}", "text")
    google.reset()
    out = assert_ok(await run(pilot, alice, g.GmailReadBlock.id, {"query": "", "max_results": 3}))
    assert len(out["emails"][0]) == 3
    assert google.requests[0].query["maxResults"] == "3"
    bad = {**MAIL, "subject": "Hi\r\nBcc: eve@evil.com"}
    assert_failed(await run(pilot, alice, g.GmailSendBlock.id, bad))
    assert google.sent == []


async def test_calendar_times_are_checked(env, google) -> None:
    pilot, alice, _ = env
    await add_oauth(pilot, alice, "google", TOKEN, [g.CALENDAR_EVENTS])
    data = {"event_title": "X", "start_time": "tomorrow", "end_time": "2030-01-01T10:00:00"}
    assert_failed(await run(pilot, alice, g.GoogleCalendarCreateEventBlock.id, data), "ISO 8601")
    data |= {"start_time": "2030-01-01T11:00:00"}
    assert_failed(await run(pilot, alice, g.GoogleCalendarCreateEventBlock.id, data), "after")
    assert google.hits == 0
