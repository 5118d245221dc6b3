"""Slack blocks against FakeSlack over real sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blockpilot.blocks.library.slack import (
    SlackListChannelsBlock,
    SlackPostMessageBlock,
    SlackReadChannelHistoryBlock,
)
from blockpilot.testing import FakeSlack, LocalHTTPServer
from tests.blocks.library.lib_provider_helpers import (
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

TOKEN = "xoxb-" + "1111-2222-CanarySlackToken9z"
ALL_SCOPES = {"chat:write", "channels:read", "channels:history"}

CASES = [
    (SlackPostMessageBlock, {"channel": "#general", "text": "Hello team"}, "chat:write"),
    (SlackListChannelsBlock, {"limit": 50}, "channels:read"),
    (SlackReadChannelHistoryBlock, {"channel": "C001"}, "channels:history"),
]
IDS = [c[0].__name__ for c in CASES]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack({TOKEN: ALL_SCOPES}) as srv:
        srv.add_channel("C001", "general", topic="Company-wide")
        srv.add_channel("C002", "random")
        srv.add_channel("G003", "secret", private=True)
        for n in range(5):
            srv.add_message("C001", f"message {n}")
        yield srv


@pytest.fixture
def other() -> Iterator[LocalHTTPServer]:
    with elsewhere() as srv:
        yield srv


@pytest.fixture
async def env(make_pilot, monkeypatch, slack, other):
    return await provider_pilot(
        make_pilot, monkeypatch, {"slack": slack.base_url}, allowed=[f"127.0.0.1:{other.port}"]
    )


async def test_post_message_and_reply_in_thread(env, slack) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "slack", TOKEN)
    out = assert_ok(await run(pilot, alice, SlackPostMessageBlock.id, CASES[0][1]))
    assert out["channel"] == ["C001"] and out["ts"][0]
    reply = {"channel": "C001", "text": "In thread", "thread_ts": out["ts"][0]}
    assert_ok(await run(pilot, alice, SlackPostMessageBlock.id, reply))
    req = slack.requests_to("/api/chat.postMessage")[-1]
    assert req.header("authorization") == f"Bearer {TOKEN}"
    assert req.json() == reply


async def test_list_channels_public_and_private(env, slack) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "slack", TOKEN)
    out = assert_ok(await run(pilot, alice, SlackListChannelsBlock.id, {"limit": 50}))
    assert [c["name"] for c in out["channels"][0]] == ["general", "random"]
    assert out["channels"][0][0]["topic"] == "Company-wide"
    out = assert_ok(
        await run(pilot, alice, SlackListChannelsBlock.id, {"include_private": True, "limit": 2})
    )
    assert len(out["channels"][0]) == 2 and out["next_cursor"][0]
    more = {"include_private": True, "cursor": out["next_cursor"][0]}
    out = assert_ok(await run(pilot, alice, SlackListChannelsBlock.id, more))
    assert [c["name"] for c in out["channels"][0]] == ["secret"] and out["next_cursor"] == [""]


async def test_history_pages_with_cursor(env, slack) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "slack", TOKEN)
    out = assert_ok(
        await run(pilot, alice, SlackReadChannelHistoryBlock.id, {"channel": "C001", "limit": 3})
    )
    assert [m["text"] for m in out["messages"][0]] == ["message 4", "message 3", "message 2"]
    cursor = out["next_cursor"][0]
    data = {"channel": "C001", "cursor": cursor}
    out = assert_ok(await run(pilot, alice, SlackReadChannelHistoryBlock.id, data))
    assert [m["text"] for m in out["messages"][0]] == ["message 1", "message 0"]
    assert out["next_cursor"] == [""]


async def test_history_follows_cursors_within_one_run(env, slack) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "slack", TOKEN)
    for n in range(5, 260):
        slack.add_message("C001", f"message {n}")
    data = {"channel": "C001", "limit": 230}
    out = assert_ok(await run(pilot, alice, SlackReadChannelHistoryBlock.id, data))
    assert len(out["messages"][0]) == 230
    assert len(slack.requests_to("/api/conversations.history")) == 2


@pytest.mark.parametrize(("block", "data", "scope"), CASES, ids=IDS)
async def test_missing_credentials_ask_for_the_scope(env, slack, block, data, scope) -> None:
    pilot, alice, bob = env
    await add_oauth(pilot, alice, "slack", TOKEN, ALL_SCOPES - {scope})
    for user in (alice, bob):
        missing = missing_credentials(await run(pilot, user, block.id, data))
        assert missing["provider"] == "slack"
        assert missing["scopes"] == [scope]
        assert missing["types"] == ["api_key", "oauth2"]
    assert slack.hits == 0


@pytest.mark.parametrize(("block", "data", "scope"), CASES, ids=IDS)
async def test_oauth_connection_with_the_scope_works(env, slack, block, data, scope) -> None:
    pilot, alice, _ = env
    await add_oauth(pilot, alice, "slack", TOKEN, [scope])
    assert_ok(await run(pilot, alice, block.id, data))


@pytest.mark.parametrize(("block", "data", "scope"), CASES, ids=IDS)
async def test_upstream_errors_are_typed_and_clean(env, slack, block, data, scope) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "slack", "xoxb-revoked-token")
    r = await run(pilot, alice, block.id, data)
    assert_failed(r, "invalid_auth")
    await add_key(pilot, alice, "slack", TOKEN)
    slack.rate_limit(17)
    r = await run(pilot, alice, block.id, data)
    assert_failed(r, "rate limit", "retry after 17 seconds")
    assert TOKEN not in str(r)


async def test_unknown_channel_names_the_slack_error(env, slack) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "slack", TOKEN)
    r = await run(pilot, alice, SlackPostMessageBlock.id, {"channel": "#nope", "text": "x"})
    assert_failed(r, "channel_not_found")


@pytest.mark.parametrize(("block", "data", "scope"), CASES, ids=IDS)
async def test_token_never_follows_a_redirect_to_another_host(
    env, slack, other, block, data, scope
) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "slack", TOKEN)
    redirect_everything(slack, other)
    r = await run(pilot, alice, block.id, data)
    assert other.hits >= 1  # the redirect was followed, without the token
    assert TOKEN not in headers_seen(other)
    assert TOKEN not in str(r)


@pytest.mark.parametrize(
    ("provider", "authorize", "token"),
    [
        ("slack", "https://slack.com/oauth/v2/authorize", "https://slack.com/api/oauth.v2.access"),
        (
            "todoist",
            "https://todoist.com/oauth/authorize",
            "https://todoist.com/oauth/access_token",
        ),
        (
            "airtable",
            "https://airtable.com/oauth2/v1/authorize",
            "https://airtable.com/oauth2/v1/token",
        ),
    ],
)
def test_oauth_apps_use_the_providers_real_endpoints(
    settings_factory, monkeypatch, provider, authorize, token
) -> None:
    from blockpilot.oauth.providers import OAuthProvider
    from blockpilot.provider_facts import PROVIDERS

    monkeypatch.setenv(f"BLOCKPILOT_PROVIDER_{provider.upper()}_CLIENT_ID", "client-id")
    monkeypatch.setenv(f"BLOCKPILOT_PROVIDER_{provider.upper()}_CLIENT_SECRET", "client-secret")
    app = OAuthProvider.from_settings(provider, settings_factory())
    assert app is not None
    assert (app.authorize_url, app.token_url) == (authorize, token)
    # Slack and Todoist read the scope parameter as a comma-separated list.
    assert (PROVIDERS[provider].scope_separator == ",") == (provider != "airtable")
