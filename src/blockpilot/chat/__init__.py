"""``blockpilot chat``: a terminal copilot over any OpenAI-compatible chat-completions API,
with find_block and run_block as its tools."""

from __future__ import annotations

from blockpilot.chat.client import ChatCompletionsClient, ChatProviderError
from blockpilot.chat.config import ENV_API_KEY, ENV_BASE_URL, ENV_MODEL, ChatConfig
from blockpilot.chat.loop import ChatLoop, ChatTranscript, ToolCallRecord, main, run_chat

__all__ = [
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_MODEL",
    "ChatCompletionsClient",
    "ChatConfig",
    "ChatLoop",
    "ChatProviderError",
    "ChatTranscript",
    "ToolCallRecord",
    "main",
    "run_chat",
]
