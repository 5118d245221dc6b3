"""``blockpilot chat``: a small copilot loop over an OpenAI-compatible chat endpoint.

The model gets ``find_block`` and ``run_block`` as tools; every tool call it makes runs
through :meth:`Pilot.call_tool` as the chosen user, in one chat session, and the JSON
response goes back to the model. A turn ends when the model answers without tool calls;
the chat ends when there is no more user input (EOF, ``exit``).
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from rich.console import Console

from blockpilot.chat.client import ChatCompletionsClient, ChatProviderError
from blockpilot.chat.config import ChatConfig
from blockpilot.chat.render import ChatView
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.storage.users import User
from blockpilot.tools.responses import ErrorResponse, SetupRequirementsResponse, ToolResponseBase
from blockpilot.tools.schemas import export_tools, restore_arguments

logger = logging.getLogger(__name__)

ReadInput = Callable[[], "str | None | Awaitable[str | None]"]
"""Returns the user's next message, or None to end the chat."""

SYSTEM_PROMPT = (
    "You are a copilot that gets things done with blockpilot's tools. To do something "
    "(send an e-mail, call an API, generate text, read a GitHub issue, work with files), call "
    "find_block to find a block, then run_block with its id and input_data {} to see its "
    "inputs, then run_block with the inputs. Never guess a block id. If run_block answers "
    "setup_requirements, tell the user which account to connect (they see the link) and wait "
    "for them before running the block again. Keep answers short."
)
EXIT_WORDS = frozenset({"exit", "quit", "/exit", "/quit", ":q"})
DEFAULT_MAX_TOOL_ROUNDS = 16


@dataclass
class ToolCallRecord:
    """One tool call of the model and what it got back."""

    name: str
    arguments: Any
    response: ToolResponseBase


@dataclass
class ChatTranscript:
    """What happened: the messages sent to the model and every tool call."""

    session_id: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)

    @property
    def answers(self) -> list[str]:
        """The assistant's texts, in order."""
        return [
            m["content"] for m in self.messages if m.get("role") == "assistant" and m.get("content")
        ]


class ChatLoop:
    """One chat of one user with a model: holds the conversation and the session."""

    def __init__(
        self,
        pilot: Pilot,
        user: User,
        client: ChatCompletionsClient,
        view: ChatView,
        *,
        session_id: str,
        system_prompt: str = SYSTEM_PROMPT,
        tool_format: Literal["openai", "openai-strict"] = "openai",
        max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS,
    ) -> None:
        self.pilot = pilot
        self.user = user
        self.client = client
        self.view = view
        self.tool_format = tool_format
        self.max_tool_rounds = max_tool_rounds
        self.tools = export_tools(pilot.tools.values(), tool_format)
        self.transcript = ChatTranscript(session_id=session_id)
        self.transcript.messages.append({"role": "system", "content": system_prompt})

    async def turn(self, text: str) -> None:
        """One user message, then model ↔ tools until the model answers without tool calls.

        Raises:
            ChatProviderError: The model endpoint failed; the turn is rolled back.
        """
        messages = self.transcript.messages
        mark = len(messages)
        messages.append({"role": "user", "content": text})
        try:
            for _ in range(self.max_tool_rounds):
                reply = await self.client.complete(messages, self.tools)
                calls = [c for c in reply.get("tool_calls") or [] if isinstance(c, dict)]
                content = reply.get("content")
                assistant: dict[str, Any] = {
                    "role": "assistant",
                    "content": content if isinstance(content, str) else None,
                }
                if calls:
                    assistant["tool_calls"] = calls
                messages.append(assistant)
                if assistant["content"]:
                    self.view.assistant(assistant["content"])
                if not calls:
                    return
                for call in calls:
                    messages.append(await self._run_tool(call))
            self.view.warning(
                f"Stopped after {self.max_tool_rounds} rounds of tool calls without an answer."
            )
        except ChatProviderError:
            del messages[mark:]
            raise

    async def _run_tool(self, call: dict[str, Any]) -> dict[str, Any]:
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        name = str(function.get("name") or "")
        raw = function.get("arguments")
        self.view.tool_call(name, raw if raw is not None else {})
        response = await self._execute(name, raw)
        self.transcript.tool_calls.append(
            ToolCallRecord(name=name, arguments=raw, response=response)
        )
        self.view.tool_result(response)
        # The view showed the person any setup link; the model gets the result without it.
        for_model = (
            response.without_setup_urls()
            if isinstance(response, SetupRequirementsResponse)
            else response
        )
        return {
            "role": "tool",
            "tool_call_id": str(call.get("id") or ""),
            "content": for_model.to_json(),
        }

    async def _execute(self, name: str, raw: Any) -> ToolResponseBase:
        session_id = self.transcript.session_id
        try:
            arguments = (
                json.loads(raw) if isinstance(raw, str) else (raw if raw is not None else {})
            )
        except ValueError:
            return ErrorResponse(
                message=f"The arguments of {name} are not valid JSON; send a JSON object",
                error="invalid_arguments",
                code="invalid_arguments",
                session_id=session_id,
            )
        if self.tool_format == "openai-strict" and name in self.pilot.tools:
            arguments = restore_arguments(self.pilot.tools[name].parameters, arguments)
        return await self.pilot.call_tool(
            name, arguments, user_id=self.user.id, session_id=session_id
        )


async def _read(read_input: ReadInput) -> str | None:
    text = read_input()
    if inspect.isawaitable(text):
        text = await text
    return text


def _console_reader(console: Console) -> ReadInput:
    async def read() -> str | None:
        try:
            return await anyio.to_thread.run_sync(lambda: console.input("[bold blue]you › [/]"))
        except (EOFError, KeyboardInterrupt):
            return None

    return read


async def run_chat(
    user: str,
    *,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    console: Console | None = None,
    message: str | None = None,
    read_input: ReadInput | None = None,
    pilot: Pilot | None = None,
    settings: Settings | None = None,
    system_prompt: str = SYSTEM_PROMPT,
    tool_format: Literal["openai", "openai-strict"] = "openai",
    max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS,
    timeout: float = 120.0,
) -> ChatTranscript:
    """Chat with a model as *user* (an id or a name), with find_block/run_block as tools.

    Args:
        user: The user whose credentials the blocks use.
        base_url, model, api_key: The OpenAI-compatible endpoint; missing values come from
            ``BLOCKPILOT_CHAT_BASE_URL`` / ``_MODEL`` / ``_API_KEY``.
        console: Where the chat is shown (default: a new stdout console).
        message: A first user message. With it and no ``read_input`` the chat is one turn.
        read_input: Returns each next user message (None ends the chat); defaults to
            prompting on the console.
        pilot: An open Pilot to use (the caller closes it); default: open one from
            *settings* (or the environment) and close it at the end.
        tool_format: ``openai`` or ``openai-strict`` (strict function calling; arguments are
            restored with :func:`blockpilot.tools.schemas.restore_arguments`).
        max_tool_rounds: Most model ↔ tool rounds in one turn.

    Returns:
        The transcript.

    Raises:
        ConfigurationError: The endpoint is not configured.
        UserNotFoundError: No such user.
        ChatProviderError: The model endpoint failed (in a one-turn chat; an interactive chat
            shows the error and waits for the next message).
    """
    config = ChatConfig.resolve(base_url=base_url, model=model, api_key=api_key)
    console = console or Console()
    own_pilot = pilot is None
    active = pilot if pilot is not None else await Pilot.open(settings)
    client = ChatCompletionsClient(config, timeout=timeout)
    try:
        found = await active.users.get(user)
        session = await active.session_for(found.id, None)
        view = ChatView(console, user_hint=found.name)
        loop = ChatLoop(
            active,
            found,
            client,
            view,
            session_id=session.session_id,
            system_prompt=system_prompt,
            tool_format=tool_format,
            max_tool_rounds=max_tool_rounds,
        )
        view.started(config.model, session.session_id)
        single_turn = message is not None and read_input is None
        reader = read_input or _console_reader(console)
        echo = read_input is not None  # typed at the console prompt: already on screen
        first = True
        while True:
            if first and message is not None:
                text: str | None = message
                view.user(message)
            elif single_turn:
                break
            else:
                text = await _read(reader)
                if text is None or text.strip().lower() in EXIT_WORDS:
                    break
                if echo:
                    view.user(text)
            first = False
            if not text or not text.strip():
                continue
            try:
                await loop.turn(text)
            except ChatProviderError as exc:
                if single_turn:
                    raise
                view.error(exc.message)
        return loop.transcript
    finally:
        await client.aclose()
        if own_pilot:
            await active.close()


def main(
    user: str,
    *,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    message: str | None = None,
    tool_format: Literal["openai", "openai-strict"] = "openai",
) -> ChatTranscript:
    """Blocking entry point for the CLI: ``blockpilot chat --user USER [--message TEXT]``."""
    return anyio.run(
        lambda: run_chat(
            user,
            base_url=base_url,
            model=model,
            api_key=api_key,
            message=message,
            tool_format=tool_format,
        )
    )
