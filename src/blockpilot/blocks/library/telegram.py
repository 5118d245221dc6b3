"""Telegram blocks over the Bot API (https://core.telegram.org/bots/api).

The bot token is part of the URL path (``/bot<token>/sendMessage``), so it is checked
against Telegram's token format before use (nothing else can enter the path), requests go
only to the Telegram API host (or the operator's ``BLOCKPILOT_PROVIDER_TELEGRAM_BASE_URL``),
and no URL is ever part of an output or a message.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.library._provider_api import Provider
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import APIKeyCredentials, CredentialsMetaInput
from blockpilot.errors import UpstreamAPIError
from blockpilot.executions.context import ExecutionContext

TELEGRAM = Provider.known("telegram")
_TOKEN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,200}$")
ParseMode = Literal["", "MarkdownV2", "HTML", "Markdown"]


def _credentials() -> Any:
    return CredentialsField(
        providers=["telegram"],
        supported_types=["api_key"],
        description="Telegram bot token from @BotFather (123456:ABC-…)",
    )


def _chat_field() -> Any:
    return SchemaField(
        description="Chat ID (a number, negative for groups) or @channel_username",
        min_length=1,
        max_length=100,
    )


async def _telegram(
    context: ExecutionContext,
    credentials: APIKeyCredentials,
    method: str,
    body: dict[str, Any],
) -> dict[str, Any]:
    token = credentials.api_key.get_secret_value()
    if not _TOKEN.match(token):
        raise ValueError(
            "The Telegram credential is not a bot token (digits, a colon, then letters); "
            "copy it again from @BotFather"
        )
    payload = await TELEGRAM.call(context, "POST", f"/bot{token}/{method}", json=body)
    if not isinstance(payload, dict) or not payload.get("ok"):
        raise UpstreamAPIError(
            "Telegram did not accept the request",
            details={"provider": "telegram"},
        )
    result = payload.get("result")
    return result if isinstance(result, dict) else {}


def _chat_id(value: str) -> int | str:
    text = value.strip()
    return int(text) if re.fullmatch(r"-?\d{1,20}", text) else text


def _message(
    chat_id: str, text: str, parse_mode: str, reply_to: int | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"chat_id": _chat_id(chat_id), "text": text}
    if parse_mode:
        body["parse_mode"] = parse_mode
    if reply_to is not None:
        body["reply_parameters"] = {"message_id": reply_to}
    return body


class _SentOutput(BlockSchemaOutput):
    message_id: Integer = SchemaField(description="ID of the message in its chat")
    chat_id: str = SchemaField(description="ID of the chat")


class SendTelegramMessageBlock(Block):
    id = "e9c4a7b2-5f18-4d3c-9b6e-1a8f2d7c4e05"
    effect = BlockEffect.WRITE
    description = "Sends a text message to a Telegram chat, group or channel with a Telegram bot."
    categories = frozenset({BlockCategory.SOCIAL, BlockCategory.COMMUNICATION})

    class Input(BlockSchemaInput):
        chat_id: str = _chat_field()
        text: str = SchemaField(description="Message text", min_length=1, max_length=4096)
        parse_mode: ParseMode = SchemaField(
            default="", description="Formatting of text: MarkdownV2, HTML, or none"
        )
        credentials: CredentialsMetaInput = _credentials()

    class Output(_SentOutput):
        pass

    async def run(
        self,
        input_data: Input,
        *,
        credentials: APIKeyCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        body = _message(input_data.chat_id, input_data.text, input_data.parse_mode)
        sent = await _telegram(execution_context, credentials, "sendMessage", body)
        yield "message_id", sent.get("message_id")
        yield "chat_id", str((sent.get("chat") or {}).get("id", input_data.chat_id))


class ReplyToTelegramMessageBlock(Block):
    id = "2b7d5e91-c3a6-4f08-8d4b-9e1c6a3f7b58"
    effect = BlockEffect.WRITE
    description = "Replies to a given message in a Telegram chat with a Telegram bot."
    categories = frozenset({BlockCategory.SOCIAL, BlockCategory.COMMUNICATION})

    class Input(BlockSchemaInput):
        chat_id: str = _chat_field()
        reply_to_message_id: Integer = SchemaField(
            ge=1, description="ID of the message to reply to"
        )
        text: str = SchemaField(description="Reply text", min_length=1, max_length=4096)
        parse_mode: ParseMode = SchemaField(
            default="", description="Formatting of text: MarkdownV2, HTML, or none"
        )
        credentials: CredentialsMetaInput = _credentials()

    class Output(_SentOutput):
        pass

    async def run(
        self,
        input_data: Input,
        *,
        credentials: APIKeyCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        body = _message(
            input_data.chat_id,
            input_data.text,
            input_data.parse_mode,
            reply_to=input_data.reply_to_message_id,
        )
        sent = await _telegram(execution_context, credentials, "sendMessage", body)
        yield "message_id", sent.get("message_id")
        yield "chat_id", str((sent.get("chat") or {}).get("id", input_data.chat_id))


class EditTelegramMessageBlock(Block):
    id = "8f3e1c6d-a4b7-4e25-b9d0-5c2a7e8f1d36"
    effect = BlockEffect.WRITE
    description = "Edits the text of a message a Telegram bot sent earlier."
    categories = frozenset({BlockCategory.SOCIAL, BlockCategory.COMMUNICATION})

    class Input(BlockSchemaInput):
        chat_id: str = _chat_field()
        message_id: Integer = SchemaField(ge=1, description="ID of the bot's message to edit")
        text: str = SchemaField(description="New message text", min_length=1, max_length=4096)
        parse_mode: ParseMode = SchemaField(
            default="", description="Formatting of text: MarkdownV2, HTML, or none"
        )
        credentials: CredentialsMetaInput = _credentials()

    class Output(_SentOutput):
        pass

    async def run(
        self,
        input_data: Input,
        *,
        credentials: APIKeyCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        body = _message(input_data.chat_id, input_data.text, input_data.parse_mode)
        body["message_id"] = input_data.message_id
        sent = await _telegram(execution_context, credentials, "editMessageText", body)
        yield "message_id", sent.get("message_id", input_data.message_id)
        yield "chat_id", str((sent.get("chat") or {}).get("id", input_data.chat_id))
