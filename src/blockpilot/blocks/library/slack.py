"""Slack blocks over the Web API (https://api.slack.com/web).

Slack answers HTTP 200 with ``{"ok": false, "error": "channel_not_found"}`` for most
failures, so every answer's ``ok`` is checked; lists page with ``cursor`` /
``response_metadata.next_cursor``.
"""

from __future__ import annotations

from typing import Any

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.library._provider_api import Provider, trim
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import APIKeyCredentials, CredentialsMetaInput, OAuth2Credentials
from blockpilot.errors import UpstreamAPIError
from blockpilot.executions.context import ExecutionContext

SLACK = Provider.known("slack")
_PAGE = 200  # Slack's recommended page size
_TEXT_LIMIT = 4000

SlackCredentials = APIKeyCredentials | OAuth2Credentials


def _credentials(scopes: list[str]) -> Any:
    return CredentialsField(
        providers=["slack"],
        supported_types=["api_key", "oauth2"],
        required_scopes=scopes,
        description="Slack bot token (xoxb-…) or connected Slack workspace",
    )


async def _slack(
    context: ExecutionContext,
    credentials: SlackCredentials,
    method: str,
    api_method: str,
    *,
    params: dict[str, Any] | None = None,
    json: Any = None,
) -> dict[str, Any]:
    payload = await SLACK.call(
        context,
        method,
        f"/{api_method}",
        auth={"Authorization": credentials.auth_header()},
        params=params,
        json=json,
        headers={"Content-Type": "application/json; charset=utf-8"} if json is not None else None,
    )
    if not isinstance(payload, dict) or not payload.get("ok"):
        error = payload.get("error") if isinstance(payload, dict) else None
        needed = payload.get("needed") if isinstance(payload, dict) else None
        hint = f" (the token needs the scope {needed})" if needed else ""
        raise UpstreamAPIError(
            f"Slack {api_method} failed: {trim(error or 'unexpected answer', 200)}{hint}",
            details={"provider": "slack", "error": str(error or "")[:200]},
        )
    return payload


def _next_cursor(payload: dict[str, Any]) -> str:
    meta = payload.get("response_metadata")
    return str(meta.get("next_cursor") or "") if isinstance(meta, dict) else ""


class SlackPostMessageBlock(Block):
    id = "5f0b7a32-8c1e-4d7a-b0e4-2a9c6f1d3e81"
    effect = BlockEffect.WRITE
    description = (
        "Posts a message to a Slack channel (or replies in a thread) as the Slack bot or "
        "connected account."
    )
    categories = frozenset({BlockCategory.COMMUNICATION})

    class Input(BlockSchemaInput):
        channel: str = SchemaField(
            description="Channel ID (C…) or name such as #general", min_length=1, max_length=200
        )
        text: str = SchemaField(
            description="Message text (Slack mrkdwn)", min_length=1, max_length=40_000
        )
        thread_ts: str = SchemaField(
            default="", description="Timestamp of a message to reply to in its thread"
        )
        credentials: CredentialsMetaInput = _credentials(["chat:write"])

    class Output(BlockSchemaOutput):
        channel: str = SchemaField(description="ID of the channel the message went to")
        ts: str = SchemaField(description="Timestamp (ID) of the posted message")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: SlackCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        body: dict[str, Any] = {"channel": input_data.channel, "text": input_data.text}
        if input_data.thread_ts:
            body["thread_ts"] = input_data.thread_ts
        payload = await _slack(
            execution_context, credentials, "POST", "chat.postMessage", json=body
        )
        yield "channel", str(payload.get("channel") or "")
        yield "ts", str(payload.get("ts") or "")


class SlackListChannelsBlock(Block):
    id = "0c9d4e6b-3a7f-4b21-9e58-7d1f2c8a4b63"
    effect = BlockEffect.READ
    description = "Lists the channels of a Slack workspace: ID, name, topic and member count."
    categories = frozenset({BlockCategory.COMMUNICATION})

    class Input(BlockSchemaInput):
        include_private: bool = SchemaField(
            default=False, description="Also list private channels the bot is in"
        )
        limit: Integer = SchemaField(default=100, ge=1, le=1000, description="Most channels")
        cursor: str = SchemaField(default="", description="next_cursor of an earlier call")
        credentials: CredentialsMetaInput = _credentials(["channels:read"])

    class Output(BlockSchemaOutput):
        channels: list[dict[str, Any]] = SchemaField(description="Channels: id, name, topic…")
        next_cursor: str = SchemaField(description="Cursor for more channels; empty at the end")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: SlackCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        types = "public_channel,private_channel" if input_data.include_private else "public_channel"
        channels: list[dict[str, Any]] = []
        cursor = input_data.cursor
        while len(channels) < input_data.limit:
            payload = await _slack(
                execution_context,
                credentials,
                "GET",
                "conversations.list",
                params={
                    "types": types,
                    "exclude_archived": "true",
                    "limit": min(_PAGE, input_data.limit - len(channels)),
                    "cursor": cursor or None,
                },
            )
            for channel in payload.get("channels") or []:
                channels.append(
                    {
                        "id": channel.get("id"),
                        "name": channel.get("name"),
                        "is_private": bool(channel.get("is_private")),
                        "topic": trim((channel.get("topic") or {}).get("value"), 300),
                        "num_members": channel.get("num_members"),
                    }
                )
            cursor = _next_cursor(payload)
            if not cursor:
                break
        yield "channels", channels[: input_data.limit]
        yield "next_cursor", cursor


class SlackReadChannelHistoryBlock(Block):
    id = "a4e2c9d7-1b6f-4f38-8a0c-5e3d9b7f2a14"
    effect = BlockEffect.READ
    description = (
        "Reads the latest messages of a Slack channel (newest first): author, text and timestamp."
    )
    categories = frozenset({BlockCategory.COMMUNICATION})

    class Input(BlockSchemaInput):
        channel: str = SchemaField(description="Channel ID (C…)", min_length=1, max_length=200)
        limit: Integer = SchemaField(default=50, ge=1, le=1000, description="Most messages")
        oldest: str = SchemaField(
            default="", description="Only messages after this Unix timestamp (e.g. 1700000000)"
        )
        cursor: str = SchemaField(default="", description="next_cursor of an earlier call")
        credentials: CredentialsMetaInput = _credentials(["channels:history"])

    class Output(BlockSchemaOutput):
        messages: list[dict[str, Any]] = SchemaField(description="Messages: user, text, ts")
        next_cursor: str = SchemaField(description="Cursor for older messages; empty at the end")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: SlackCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        messages: list[dict[str, Any]] = []
        cursor = input_data.cursor
        while len(messages) < input_data.limit:
            payload = await _slack(
                execution_context,
                credentials,
                "GET",
                "conversations.history",
                params={
                    "channel": input_data.channel,
                    "limit": min(_PAGE, input_data.limit - len(messages)),
                    "oldest": input_data.oldest or None,
                    "cursor": cursor or None,
                },
            )
            for message in payload.get("messages") or []:
                messages.append(
                    {
                        "user": message.get("user") or message.get("bot_id") or "",
                        "text": trim(message.get("text"), _TEXT_LIMIT),
                        "ts": message.get("ts"),
                        "thread_ts": message.get("thread_ts"),
                        "reply_count": message.get("reply_count", 0),
                    }
                )
            cursor = _next_cursor(payload) if payload.get("has_more") else ""
            if not cursor:
                break
        yield "messages", messages[: input_data.limit]
        yield "next_cursor", cursor
