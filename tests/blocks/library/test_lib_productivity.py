"""Todoist and Airtable blocks against FakeTodoist and FakeAirtable over real sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blockpilot.blocks.library.airtable import (
    AirtableCreateRecordsBlock,
    AirtableGetRecordBlock,
    AirtableListBasesBlock,
    AirtableListRecordsBlock,
    AirtableListSchemaBlock,
    AirtableUpdateRecordsBlock,
)
from blockpilot.blocks.library.todoist import (
    TodoistCloseTaskBlock,
    TodoistCreateTaskBlock,
    TodoistGetTasksBlock,
    TodoistListProjectsBlock,
    TodoistUpdateTaskBlock,
)
from blockpilot.testing import FakeAirtable, FakeTodoist, LocalHTTPServer

from .lib_provider_helpers import (
    add_key,
    add_oauth,
    assert_failed,
    assert_ok,
    elsewhere,
    headers_seen,
    missing_credentials,
    provider_pilot,
    redirect_everything,
    run,
)

TODOIST_TOKEN = "0123456789abcdef0123456789abcdef-todoist-canary"
AIRTABLE_TOKEN = "patCanary.0123456789abcdef0123456789abcdef"
TOKENS = {"todoist": TODOIST_TOKEN, "airtable": AIRTABLE_TOKEN}


@pytest.fixture
def todoist() -> Iterator[FakeTodoist]:
    with FakeTodoist({TODOIST_TOKEN}) as srv:
        inbox = srv.add_project("Inbox", inbox=True)
        work = srv.add_project("Work")
        srv.add_task("Buy milk", inbox, labels=["errand"])
        srv.add_task("Ship release", work, priority=4, due_string="tomorrow")
        yield srv


@pytest.fixture
def airtable() -> Iterator[FakeAirtable]:
    with FakeAirtable({AIRTABLE_TOKEN}) as srv:
        crm = srv.add_base("CRM", {"Contacts": ["Name", "Email", "Status"]})
        srv.add_base("Roadmap", {"Features": ["Title"]})
        srv.add_base("Hiring", {"Candidates": ["Name"]})
        for n in range(150):
            srv.add_record(
                crm, "Contacts", {"Name": f"Person {n}", "Status": "Done" if n % 2 else "Open"}
            )
        yield srv


@pytest.fixture
def other() -> Iterator[LocalHTTPServer]:
    with elsewhere() as srv:
        yield srv


@pytest.fixture
async def env(make_pilot, monkeypatch, todoist, airtable, other):
    bases = {"todoist": todoist.base_url, "airtable": airtable.base_url}
    return await provider_pilot(make_pilot, monkeypatch, bases, allowed=[f"127.0.0.1:{other.port}"])


def _crm(airtable: FakeAirtable) -> str:
    return next(b for b, v in airtable.bases.items() if v["name"] == "CRM")


def _cases(todoist: FakeTodoist, airtable: FakeAirtable):
    task = next(iter(todoist.tasks))
    crm = _crm(airtable)
    record = next(iter(airtable.tables[(crm, "Contacts")]))
    table = {"base_id": crm, "table_id_or_name": "Contacts"}
    return {
        TodoistListProjectsBlock: ({"limit": 10}, "data:read"),
        TodoistGetTasksBlock: ({"limit": 10}, "data:read"),
        TodoistCreateTaskBlock: ({"content": "Call Bob"}, "data:read_write"),
        TodoistUpdateTaskBlock: ({"task_id": task, "priority": 3}, "data:read_write"),
        TodoistCloseTaskBlock: ({"task_id": task}, "data:read_write"),
        AirtableListBasesBlock: ({"limit": 10}, "schema.bases:read"),
        AirtableListSchemaBlock: ({"base_id": crm}, "schema.bases:read"),
        AirtableListRecordsBlock: ({**table, "max_records": 5}, "data.records:read"),
        AirtableGetRecordBlock: ({**table, "record_id": record}, "data.records:read"),
        AirtableCreateRecordsBlock: (
            {**table, "records": [{"Name": "New"}]},
            "data.records:write",
        ),
        AirtableUpdateRecordsBlock: (
            {**table, "records": [{"id": record, "fields": {"Status": "Won"}}]},
            "data.records:write",
        ),
    }


BLOCKS = [
    TodoistListProjectsBlock,
    TodoistGetTasksBlock,
    TodoistCreateTaskBlock,
    TodoistUpdateTaskBlock,
    TodoistCloseTaskBlock,
    AirtableListBasesBlock,
    AirtableListSchemaBlock,
    AirtableListRecordsBlock,
    AirtableGetRecordBlock,
    AirtableCreateRecordsBlock,
    AirtableUpdateRecordsBlock,
]
IDS = [b.__name__ for b in BLOCKS]


def _provider(block) -> str:
    return "todoist" if block.__name__.startswith("Todoist") else "airtable"


async def test_todoist_projects_tasks_and_changes(env, todoist) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "todoist", TODOIST_TOKEN)
    out = assert_ok(await run(pilot, alice, TodoistListProjectsBlock.id, {"limit": 10}))
    names = [p["name"] for p in out["projects"][0]]
    assert names == ["Inbox", "Work"]
    work = out["projects"][0][1]["id"]
    out = assert_ok(await run(pilot, alice, TodoistGetTasksBlock.id, {"project_id": work}))
    [task] = out["tasks"][0]
    assert task["content"] == "Ship release" and task["due_string"] == "tomorrow"
    out = assert_ok(await run(pilot, alice, TodoistGetTasksBlock.id, {"label": "errand"}))
    assert [t["content"] for t in out["tasks"][0]] == ["Buy milk"]
    data = {"content": "Call Bob", "due_string": "friday", "priority": 2, "labels": ["calls"]}
    out = assert_ok(await run(pilot, alice, TodoistCreateTaskBlock.id, data))
    new = out["id"][0]
    assert todoist.last_request.json() == data
    out = assert_ok(
        await run(pilot, alice, TodoistUpdateTaskBlock.id, {"task_id": new, "content": "Call Bo"})
    )
    assert out["task"][0]["content"] == "Call Bo"
    out = assert_ok(await run(pilot, alice, TodoistCloseTaskBlock.id, {"task_id": new}))
    assert out == {"success": [True]} and todoist.tasks[new]["is_completed"]
    assert todoist.last_request.header("authorization") == f"Bearer {TODOIST_TOKEN}"


async def test_todoist_bad_input_and_errors(env, todoist) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "todoist", TODOIST_TOKEN)
    r = await run(pilot, alice, TodoistCloseTaskBlock.id, {"task_id": "../projects"})
    assert_failed(r, "task_id")
    r = await run(pilot, alice, TodoistCloseTaskBlock.id, {"task_id": "404404"})
    assert_failed(r, "HTTP 404", "Task not found")
    r = await run(pilot, alice, TodoistGetTasksBlock.id, {"filter": "nonsense ("})
    assert_failed(r, "HTTP 400", "Invalid filter")
    r = await run(pilot, alice, TodoistUpdateTaskBlock.id, {"task_id": "1"})
    assert_failed(r, "Nothing to change")


async def test_airtable_bases_schema_and_records(env, airtable) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "airtable", AIRTABLE_TOKEN)
    out = assert_ok(await run(pilot, alice, AirtableListBasesBlock.id, {"limit": 10}))
    assert [b["name"] for b in out["bases"][0]] == ["CRM", "Roadmap", "Hiring"]
    assert out["offset"] == [""]
    assert len(airtable.requests_to("/v0/meta/bases")) == 2  # followed the offset
    crm = _crm(airtable)
    out = assert_ok(await run(pilot, alice, AirtableListSchemaBlock.id, {"base_id": crm}))
    [table] = out["tables"][0]
    assert [f["name"] for f in table["fields"]] == ["Name", "Email", "Status"]
    t = {"base_id": crm, "table_id_or_name": "Contacts"}
    out = assert_ok(await run(pilot, alice, AirtableListRecordsBlock.id, {**t, "max_records": 130}))
    assert len(out["records"][0]) == 130 and out["offset"][0]
    out = assert_ok(
        await run(pilot, alice, AirtableListRecordsBlock.id, {**t, "offset": out["offset"][0]})
    )
    assert len(out["records"][0]) == 20 and out["offset"] == [""]
    data = {**t, "filter_formula": "{Status} = 'Done'", "max_records": 1000}
    out = assert_ok(await run(pilot, alice, AirtableListRecordsBlock.id, data))
    assert len(out["records"][0]) == 75
    out = assert_ok(
        await run(pilot, alice, AirtableCreateRecordsBlock.id, {**t, "records": [{"Name": "Zoe"}]})
    )
    assert out["count"] == [1]
    rec = out["records"][0][0]["id"]
    change = {**t, "records": [{"id": rec, "fields": {"Status": "Won"}}]}
    out = assert_ok(await run(pilot, alice, AirtableUpdateRecordsBlock.id, change))
    assert out["records"][0][0]["fields"] == {"Name": "Zoe", "Status": "Won"}
    out = assert_ok(await run(pilot, alice, AirtableGetRecordBlock.id, {**t, "record_id": rec}))
    assert out["fields"] == [{"Name": "Zoe", "Status": "Won"}]


async def test_airtable_names_are_encoded_and_ids_checked(env, airtable) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "airtable", AIRTABLE_TOKEN)
    crm = _crm(airtable)
    r = await run(
        pilot, alice, AirtableListRecordsBlock.id, {"base_id": crm, "table_id_or_name": "../meta"}
    )
    assert_failed(r, "HTTP 404", "Could not find table")
    assert airtable.last_request.path == f"/v0/{crm}/..%2Fmeta"
    bad = {"base_id": "../meta/bases", "table_id_or_name": "x"}
    assert_failed(await run(pilot, alice, AirtableListRecordsBlock.id, bad), "base_id")
    bad = {"base_id": crm, "table_id_or_name": "Contacts", "record_id": "rec/../x"}
    assert_failed(await run(pilot, alice, AirtableGetRecordBlock.id, bad), "record ID")
    too_many = {"base_id": crm, "table_id_or_name": "Contacts", "records": [{"Name": "x"}] * 11}
    r = await run(pilot, alice, AirtableCreateRecordsBlock.id, too_many)
    assert r["type"] == "input_validation_error" and "records" in r["message"], r
    unknown = {"base_id": crm, "table_id_or_name": "Contacts", "records": [{"Nope": 1}]}
    r = await run(pilot, alice, AirtableCreateRecordsBlock.id, unknown)
    assert_failed(r, "HTTP 422", "Unknown field name")


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_missing_credentials_ask_for_the_scope(env, todoist, airtable, block) -> None:
    pilot, alice, bob = env
    data, scope = _cases(todoist, airtable)[block]
    provider = _provider(block)
    await add_oauth(pilot, alice, provider, TOKENS[provider], ["unrelated"])
    for user in (alice, bob):
        missing = missing_credentials(await run(pilot, user, block.id, data))
        assert missing["provider"] == provider
        assert missing["scopes"] == [scope]
        assert missing["types"] == ["api_key", "oauth2"]
    assert todoist.hits == airtable.hits == 0


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_oauth_with_the_scope_works(env, todoist, airtable, block) -> None:
    pilot, alice, _ = env
    data, scope = _cases(todoist, airtable)[block]
    provider = _provider(block)
    await add_oauth(pilot, alice, provider, TOKENS[provider], [scope])
    assert_ok(await run(pilot, alice, block.id, data))


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_upstream_errors_are_typed(env, todoist, airtable, block) -> None:
    pilot, alice, _ = env
    data, _ = _cases(todoist, airtable)[block]
    provider = _provider(block)
    await add_key(pilot, alice, provider, "revoked-" + TOKENS[provider][:10])
    assert_failed(await run(pilot, alice, block.id, data), "HTTP 401", "reconnect")
    await add_key(pilot, alice, provider, TOKENS[provider])
    (todoist if provider == "todoist" else airtable).rate_limit()
    r = await run(pilot, alice, block.id, data)
    assert_failed(r, "rate limit", "retry after")
    assert TOKENS[provider] not in str(r)


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
async def test_token_never_reaches_another_host(env, todoist, airtable, other, block) -> None:
    pilot, alice, _ = env
    data, _ = _cases(todoist, airtable)[block]
    provider = _provider(block)
    await add_key(pilot, alice, provider, TOKENS[provider])
    redirect_everything(todoist if provider == "todoist" else airtable, other)
    r = await run(pilot, alice, block.id, data)
    assert other.hits >= 1
    assert TOKENS[provider] not in headers_seen(other)
    assert TOKENS[provider] not in str(r)
