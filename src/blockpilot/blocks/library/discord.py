"""Discord blocks over the bot REST API (https://discord.com/developers/docs/reference).

A bot token goes as ``Authorization: Bot <token>``; channel ids are snowflakes (digits only),
checked before they reach a URL path.
"""

from __future__ import annotations

import re
from typing import Any

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.library._provider_api import Provider, trim
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import APIKeyCredentials, CredentialsMetaInput
from blockpilot.executions.context import ExecutionContext

DISCORD = Provider.known("discord")
MAX_CONTENT = 2000  # Discord's limit per message
_SNOWFLAKE = re.compile(r"^\d{5,25}$")
_CHANNEL_TYPES = {
    0: "text",
    2: "voice",
    4: "category",
    5: "announcement",
    10: "announcement_thread",
    11: "public_thread",
    12: "private_thread",
    13: "stage",
    15: "forum",
    16: "media",
}


def _credentials() -> Any:
    return CredentialsField(
        providers=["discord"],
        supported_types=["api_key"],
        description="Discord bot token (from the Developer Portal's Bot page)",
    )


def _channel_field() -> Any:
    return SchemaField(
        description="ID of the Discord channel (a number such as 1234567890123456789)",
        min_length=1,
        max_length=30,
    )


def _channel_path(channel_id: str) -> str:
    channel = channel_id.strip()
    if not _SNOWFLAKE.match(channel):
        raise ValueError(
            "channel_id must be a Discord channel ID (digits only); in Discord, turn on "
            "Developer Mode and use 'Copy Channel ID'"
        )
    return f"/channels/{channel}"


async def _discord(
    context: ExecutionContext,
    credentials: APIKeyCredentials,
    method: str,
    path: str,
    json: Any = None,
) -> dict[str, Any]:
    payload = await DISCORD.call(
        context,
        method,
        path,
        auth={"Authorization": f"Bot {credentials.api_key.get_secret_value()}"},
        json=json,
    )
    return payload if isinstance(payload, dict) else {}


def _chunks(text: str) -> list[str]:
    """Split *text* into Discord-sized messages, at line breaks where possible."""
    parts: list[str] = []
    while len(text) > MAX_CONTENT:
        cut = text.rfind("\n", 0, MAX_CONTENT)
        cut = cut if cut > 0 else MAX_CONTENT
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return [*parts, text] if text else parts


class SendDiscordMessageBlock(Block):
    id = "d3b8f1a6-2c47-4e9b-8f05-6a1e7c3d9b42"
    effect = BlockEffect.WRITE
    description = (
        "Sends a text message to a Discord channel with a Discord bot (long texts are split "
        "into several messages)."
    )
    categories = frozenset({BlockCategory.SOCIAL, BlockCategory.COMMUNICATION})

    class Input(BlockSchemaInput):
        message_content: str = SchemaField(
            description="The message to send", min_length=1, max_length=20_000
        )
        channel_id: str = _channel_field()
        credentials: CredentialsMetaInput = _credentials()

    class Output(BlockSchemaOutput):
        status: str = SchemaField(description="'Message sent' when it worked")
        message_id: str = SchemaField(description="ID of the (first) message sent")
        channel_id: str = SchemaField(description="ID of the channel")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: APIKeyCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        path = _channel_path(input_data.channel_id) + "/messages"
        first = ""
        for chunk in _chunks(input_data.message_content):
            sent = await _discord(execution_context, credentials, "POST", path, {"content": chunk})
            first = first or str(sent.get("id") or "")
        yield "status", "Message sent"
        yield "message_id", first
        yield "channel_id", input_data.channel_id.strip()


class SendDiscordEmbedBlock(Block):
    id = "7e2a9c45-b1d8-4f36-a0e7-3c5b8d1f6e29"
    effect = BlockEffect.WRITE
    description = (
        "Sends a rich embed (a card with title, description, link, colour and fields) to a "
        "Discord channel with a Discord bot."
    )
    categories = frozenset({BlockCategory.SOCIAL, BlockCategory.COMMUNICATION})

    class Input(BlockSchemaInput):
        channel_id: str = _channel_field()
        title: str = SchemaField(default="", description="Embed title", max_length=256)
        description: str = SchemaField(
            default="", description="Embed text (Markdown)", max_length=4096
        )
        url: str = SchemaField(default="", description="Link of the title", max_length=2048)
        color: Integer = SchemaField(
            default=5814783, ge=0, le=0xFFFFFF, description="Colour as an integer (0xRRGGBB)"
        )
        fields: list[dict[str, Any]] = SchemaField(
            default_factory=list,
            description="Up to 25 fields: objects with name, value and optional inline",
            max_length=25,
        )
        footer: str = SchemaField(default="", description="Footer text", max_length=2048)
        credentials: CredentialsMetaInput = _credentials()

    class Output(BlockSchemaOutput):
        status: str = SchemaField(description="'Embed sent' when it worked")
        message_id: str = SchemaField(description="ID of the message carrying the embed")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: APIKeyCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        if not (input_data.title or input_data.description or input_data.fields):
            yield "error", "An embed needs a title, a description or fields"
            return
        embed: dict[str, Any] = {"color": input_data.color}
        for key in ("title", "description", "url"):
            if getattr(input_data, key):
                embed[key] = getattr(input_data, key)
        if input_data.footer:
            embed["footer"] = {"text": input_data.footer}
        fields = []
        for field in input_data.fields:
            if not field.get("name") or not field.get("value"):
                yield "error", "Every embed field needs a name and a value"
                return
            fields.append(
                {
                    "name": trim(field["name"], 256),
                    "value": trim(field["value"], 1024),
                    "inline": bool(field.get("inline", False)),
                }
            )
        if fields:
            embed["fields"] = fields
        path = _channel_path(input_data.channel_id) + "/messages"
        sent = await _discord(execution_context, credentials, "POST", path, {"embeds": [embed]})
        yield "status", "Embed sent"
        yield "message_id", str(sent.get("id") or "")


class DiscordChannelInfoBlock(Block):
    id = "4c1f8e3a-9d62-4b7e-b5a0-8e2d6f1c7a93"
    effect = BlockEffect.READ
    description = "Reads a Discord channel's name, type, topic and server (guild) ID."
    categories = frozenset({BlockCategory.SOCIAL, BlockCategory.COMMUNICATION})

    class Input(BlockSchemaInput):
        channel_id: str = _channel_field()
        credentials: CredentialsMetaInput = _credentials()

    class Output(BlockSchemaOutput):
        name: str = SchemaField(description="Channel name")
        type: str = SchemaField(description="Channel type: text, voice, forum, thread…")
        topic: str = SchemaField(description="Channel topic")
        guild_id: str = SchemaField(description="ID of the server the channel belongs to")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: APIKeyCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        channel = await _discord(
            execution_context, credentials, "GET", _channel_path(input_data.channel_id)
        )
        kind = channel.get("type")
        yield "name", str(channel.get("name") or "")
        yield "type", _CHANNEL_TYPES.get(kind, str(kind)) if isinstance(kind, int) else ""
        yield "topic", trim(channel.get("topic"), 1024)
        yield "guild_id", str(channel.get("guild_id") or "")
