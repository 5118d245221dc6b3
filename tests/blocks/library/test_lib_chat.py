"""Discord and Telegram blocks against FakeDiscord and FakeTelegram over real sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blockpilot.blocks.library.discord import (
    DiscordChannelInfoBlock,
    SendDiscordEmbedBlock,
    SendDiscordMessageBlock,
)
from blockpilot.blocks.library.telegram import (
    EditTelegramMessageBlock,
    ReplyToTelegramMessageBlock,
    SendTelegramMessageBlock,
)
from blockpilot.testing import FakeDiscord, FakeTelegram

from .lib_provider_helpers import (
    add_key,
    assert_failed,
    assert_ok,
    headers_seen,
    missing_credentials,
    provider_pilot,
    redirect_everything,
    run,
)

DISCORD_TOKEN = "MTA5OTk5OTk5OTk5OTk5OTk5.GcAnry.DiscordCanaryToken_0123456789"
TELEGRAM_TOKEN = "123456789:AAF-CanaryTelegramToken_abcdefghijk"
CHANNEL = "1100000000000000042"

DISCORD_CASES = [
    (SendDiscordMessageBlock, {"channel_id": CHANNEL, "message_content": "Hi"}),
    (SendDiscordEmbedBlock, {"channel_id": CHANNEL, "title": "Release", "description": "v2"}),
    (DiscordChannelInfoBlock, {"channel_id": CHANNEL}),
]
TELEGRAM_CASES = [
    (SendTelegramMessageBlock, {"chat_id": "-1001", "text": "Hello"}),
    (ReplyToTelegramMessageBlock, {"chat_id": "-1001", "reply_to_message_id": 1, "text": "Re"}),
    (EditTelegramMessageBlock, {"chat_id": "-1001", "message_id": 1, "text": "Edited"}),
]
ALL = [(b, d, "discord") for b, d in DISCORD_CASES] + [
    (b, d, "telegram") for b, d in TELEGRAM_CASES
]
IDS = [c[0].__name__ for c in ALL]
TOKENS = {"discord": DISCORD_TOKEN, "telegram": TELEGRAM_TOKEN}


@pytest.fixture
def discord() -> Iterator[FakeDiscord]:
    with FakeDiscord({DISCORD_TOKEN}) as srv:
        srv.add_channel(CHANNEL, "general", topic="Say hi")
        yield srv


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram({TELEGRAM_TOKEN}) as srv:
        srv.add_chat(-1001, username="news", title="News")
        yield srv


@pytest.fixture
async def env(make_pilot, monkeypatch, discord, telegram, other):
    bases = {"discord": discord.base_url, "telegram": telegram.base_url}
    return await provider_pilot(make_pilot, monkeypatch, bases, allowed=[f"127.0.0.1:{other.port}"])


async def _seed(pilot, alice, telegram) -> None:
    """Telegram message 1 exists (replies and edits refer to it)."""
    await add_key(pilot, alice, "telegram", TELEGRAM_TOKEN)
    data = {"chat_id": "-1001", "text": "first"}
    assert_ok(await run(pilot, alice, SendTelegramMessageBlock.id, data))


async def test_discord_message_embed_and_channel_info(env, discord) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "discord", DISCORD_TOKEN)
    out = assert_ok(await run(pilot, alice, SendDiscordMessageBlock.id, DISCORD_CASES[0][1]))
    assert out["status"] == ["Message sent"] and out["message_id"][0].isdigit()
    assert discord.last_request.header("authorization") == f"Bot {DISCORD_TOKEN}"
    embed = {
        "channel_id": CHANNEL,
        "title": "Release",
        "fields": [{"name": "Version", "value": "2.0", "inline": True}],
        "color": 255,
    }
    assert_ok(await run(pilot, alice, SendDiscordEmbedBlock.id, embed))
    sent = discord.messages[-1]["embeds"][0]
    assert sent == {
        "color": 255,
        "title": "Release",
        "fields": [{"name": "Version", "value": "2.0", "inline": True}],
    }
    out = assert_ok(await run(pilot, alice, DiscordChannelInfoBlock.id, {"channel_id": CHANNEL}))
    assert out == {
        "name": ["general"],
        "type": ["text"],
        "topic": ["Say hi"],
        "guild_id": ["900000000000000001"],
    }


async def test_discord_long_message_is_split_at_line_breaks(env, discord) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "discord", DISCORD_TOKEN)
    text = "\n".join(f"line {n:04d} " + "x" * 80 for n in range(60))
    data = {"channel_id": CHANNEL, "message_content": text}
    assert_ok(await run(pilot, alice, SendDiscordMessageBlock.id, data))
    parts = [m["content"] for m in discord.messages]
    assert len(parts) == 3 and all(len(p) <= 2000 for p in parts)
    assert "\n".join(parts) == text


async def test_discord_channel_id_must_be_a_snowflake(env, discord) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "discord", DISCORD_TOKEN)
    for bad in ("../users/@me", "general", "123"):
        r = await run(pilot, alice, DiscordChannelInfoBlock.id, {"channel_id": bad})
        assert_failed(r, "channel_id")
    assert discord.hits == 0


async def test_telegram_send_reply_and_edit(env, telegram) -> None:
    pilot, alice, _ = env
    await _seed(pilot, alice, telegram)
    req = telegram.last_request
    assert req.path == f"/bot{TELEGRAM_TOKEN}/sendMessage"
    assert req.json() == {"chat_id": -1001, "text": "first"}
    out = assert_ok(await run(pilot, alice, ReplyToTelegramMessageBlock.id, TELEGRAM_CASES[1][1]))
    assert out == {"message_id": [2], "chat_id": ["-1001"]}
    assert telegram.messages[(-1001, 2)]["reply_to_message"]["text"] == "first"
    out = assert_ok(await run(pilot, alice, EditTelegramMessageBlock.id, TELEGRAM_CASES[2][1]))
    assert out["message_id"] == [1] and telegram.messages[(-1001, 1)]["text"] == "Edited"
    data = {"chat_id": "@news", "text": "<b>bold</b>", "parse_mode": "HTML"}
    assert_ok(await run(pilot, alice, SendTelegramMessageBlock.id, data))
    assert telegram.last_request.json()["parse_mode"] == "HTML"
    assert TELEGRAM_TOKEN not in str(out)


async def test_telegram_errors_never_show_the_token(env, telegram) -> None:
    pilot, alice, _ = env
    await _seed(pilot, alice, telegram)
    r = await run(pilot, alice, SendTelegramMessageBlock.id, {"chat_id": "42", "text": "x"})
    assert_failed(r, "HTTP 400", "chat not found")
    telegram.rate_limit(7)
    r = await run(pilot, alice, SendTelegramMessageBlock.id, {"chat_id": "-1001", "text": "x"})
    assert_failed(r, "retry after 7 seconds")
    assert TELEGRAM_TOKEN not in str(r)
    records = await pilot.executions.list(alice.id)
    assert records and TELEGRAM_TOKEN not in repr(records)


async def test_a_telegram_credential_that_is_no_token_never_reaches_a_path(env, telegram) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "telegram", "../../evil?x=")
    r = await run(pilot, alice, SendTelegramMessageBlock.id, {"chat_id": "-1001", "text": "x"})
    assert_failed(r, "not a bot token")
    assert telegram.hits == 0


@pytest.mark.parametrize(("block", "data", "provider"), ALL, ids=IDS)
async def test_missing_credentials_need_setup(env, discord, telegram, block, data, provider):
    pilot, alice, bob = env
    await add_key(pilot, bob, "slack" if provider == "discord" else "discord", "some-key")
    for user in (alice, bob):
        missing = missing_credentials(await run(pilot, user, block.id, data))
        assert missing["provider"] == provider and missing["types"] == ["api_key"]
    assert discord.hits == telegram.hits == 0


@pytest.mark.parametrize(("block", "data", "provider"), ALL, ids=IDS)
async def test_upstream_errors_are_block_failures(env, discord, telegram, block, data, provider):
    pilot, alice, _ = env
    if provider == "discord":
        await add_key(pilot, alice, "discord", "revoked.bot.token")
        assert_failed(await run(pilot, alice, block.id, data), "HTTP 401", "reconnect")
        await add_key(pilot, alice, "discord", DISCORD_TOKEN)
        discord.rate_limit(2.5)
        r = await run(pilot, alice, block.id, data)
        assert_failed(r, "rate limit", "retry after 2.5 seconds")
    else:
        await add_key(pilot, alice, "telegram", "999:revokedrevokedrevokedrevoked")
        r = await run(pilot, alice, block.id, data)
        assert_failed(r, "HTTP 401", "Unauthorized")
    assert TOKENS[provider] not in str(r)


@pytest.mark.parametrize(("block", "data", "provider"), ALL, ids=IDS)
async def test_credential_never_reaches_another_host(
    env, discord, telegram, other, block, data, provider
) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, provider, TOKENS[provider])
    redirect_everything(discord if provider == "discord" else telegram, other)
    r = await run(pilot, alice, block.id, data)
    assert other.hits >= 1
    assert TOKENS[provider] not in headers_seen(other)
    assert TOKENS[provider] not in str(r)
