"""``blockpilot chat`` against a scripted OpenAI-compatible server that plays whole
conversations (tools run for real on a real Pilot; the LLM block calls a fake Anthropic)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console

from blockpilot.chat import ChatConfig, ChatProviderError, main, run_chat
from blockpilot.errors import ConfigurationError, UserNotFoundError
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.storage.users import User
from blockpilot.testing import FakeAnthropic, FakeOpenAI

CHAT_KEY = "chat-key-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-test-0123456789abcdef"
AI_BLOCK = "1f292d4a-41a4-4977-9684-7c8d560b9f91"
CALCULATOR = "b1ab9b19-67a6-406d-abf5-2dba76d00c79"
HAIKU_INPUT = {"prompt": "Write a haiku about bees", "model": "claude-sonnet-4-5"}
PUBLIC_URL = "https://bp.example"


@pytest.fixture
def chat_llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_keys={CHAT_KEY}) as server:
        yield server


@pytest.fixture
def anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_keys={ANTHROPIC_KEY}) as server:
        yield server


@pytest.fixture
def pilot_settings(
    settings_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    anthropic: FakeAnthropic,
    request: pytest.FixtureRequest,
) -> Settings:
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_ANTHROPIC_BASE_URL", anthropic.origin)
    # A test that asks for ``served`` gets setup links, as where the service runs.
    if "served" in request.fixturenames:
        return settings_factory(public_url=PUBLIC_URL)
    return settings_factory()


@pytest.fixture
def served() -> str:
    """Where this test's setup links point (see ``pilot_settings``)."""
    return PUBLIC_URL


@pytest.fixture
def console() -> Console:
    return Console(file=io.StringIO(), width=200, color_system=None, force_terminal=False)


def screen(console: Console) -> str:
    return console.file.getvalue()  # type: ignore[attr-defined]


def inputs(*items: Any) -> Any:
    """A read_input callback: strings are user messages, callables run (and give one)."""
    queue = list(items)

    async def read() -> str | None:
        if not queue:
            return None
        item = queue.pop(0)
        if callable(item):
            return await item()
        return item

    return read


def tool(name: str, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def sent_messages(server: FakeOpenAI) -> list[list[dict[str, Any]]]:
    return [r.json()["messages"] for r in server.requests_to("/v1/chat/completions")]


async def test_a_whole_conversation_find_details_setup_connect_run_answer(
    pilot: Pilot,
    alice: User,
    chat_llm: FakeOpenAI,
    anthropic: FakeAnthropic,
    console: Console,
    served: str,
) -> None:
    await pilot.add_credentials(
        alice.id, {"provider": "openai", "type": "api_key", "api_key": "sk-openai-0123456789"}
    )
    chat_llm.script(
        [
            tool("find_block", query="generate text with an AI model"),
            tool("run_block", block_id=AI_BLOCK, input_data={}),
            tool("run_block", block_id=AI_BLOCK, input_data=HAIKU_INPUT),
            "Please connect your Anthropic account with the link shown, then tell me.",
            tool("run_block", block_id=AI_BLOCK, input_data=HAIKU_INPUT),
            "Here is your haiku.",
        ]
    )

    async def connect_anthropic() -> str:
        await pilot.add_credentials(
            alice.id, {"provider": "anthropic", "type": "api_key", "api_key": ANTHROPIC_KEY}
        )
        return "Done, I connected it."

    transcript = await run_chat(
        "alice",
        base_url=chat_llm.base_url,
        model="gpt-4o-mini",
        api_key=CHAT_KEY,
        console=console,
        pilot=pilot,
        read_input=inputs("Write a haiku about bees with Claude", connect_anthropic),
    )

    kinds = [(c.name, c.response.type) for c in transcript.tool_calls]
    assert kinds == [
        ("find_block", "block_list"),
        ("run_block", "block_details"),
        ("run_block", "setup_requirements"),
        ("run_block", "block_output"),
    ]
    assert transcript.tool_calls[-1].response.outputs["response"] == [
        "echo: Write a haiku about bees"
    ]
    assert transcript.answers == [
        "Please connect your Anthropic account with the link shown, then tell me.",
        "Here is your haiku.",
    ]
    assert {c.response.session_id for c in transcript.tool_calls} == {transcript.session_id}
    assert await pilot.sessions.get(alice.id, transcript.session_id) is not None

    # the model endpoint saw every tool result, in OpenAI's tool-message shape
    requests = chat_llm.requests_to("/v1/chat/completions")
    assert len(requests) == 6 and chat_llm.pending_script == 0
    assert all(r.header("Authorization") == f"Bearer {CHAT_KEY}" for r in requests)
    body = requests[0].json()
    assert [t["function"]["name"] for t in body["tools"]] == [
        "find_block",
        "run_block",
        "continue_run_block",
        "get_execution",
    ]
    assert body["messages"][0]["role"] == "system" and body["model"] == "gpt-4o-mini"
    last = sent_messages(chat_llm)[-1]
    tool_messages = [m for m in last if m["role"] == "tool"]
    assert [json.loads(m["content"])["type"] for m in tool_messages] == [
        "block_list",
        "block_details",
        "setup_requirements",
        "block_output",
    ]
    # The person saw the setup link (below); the model's copy has none (issue 11, item 8).
    setup = json.loads(tool_messages[2]["content"])
    [missing] = setup["setup_info"]["user_readiness"]["missing_credentials"].values()
    assert "setup_url" not in missing and missing["link_shown"] is True
    assert all(f"{served}/setup" not in str(m["content"]) for m in last)
    calls = [c for m in last if m["role"] == "assistant" for c in m.get("tool_calls", [])]
    assert [m["tool_call_id"] for m in tool_messages] == [c["id"] for c in calls]
    assert [m["content"] for m in last if m["role"] == "user"] == [
        "Write a haiku about bees with Claude",
        "Done, I connected it.",
    ]
    assert (
        anthropic.last_request is not None
        and anthropic.last_request.header("x-api-key") == ANTHROPIC_KEY
    )

    shown = screen(console)
    for expected in (
        "→ find_block",
        "← block_details",
        "← setup_requirements",
        "← block_output",
        f"{served}/setup/",
        "Connect an account",
        "Here is your haiku.",
    ):
        assert expected in shown, expected  # fmt: skip
    assert CHAT_KEY not in shown and ANTHROPIC_KEY not in shown


async def test_without_a_service_the_setup_panel_shows_the_cli_command(
    pilot: Pilot, alice: User, chat_llm: FakeOpenAI, console: Console
) -> None:
    chat_llm.script(
        [tool("run_block", block_id=AI_BLOCK, input_data={"prompt": "hi"}), "Connect OpenAI first."]
    )
    transcript = await run_chat(
        "alice",
        base_url=chat_llm.base_url,
        model="m",
        api_key=CHAT_KEY,
        console=console,
        pilot=pilot,
        message="hi",
    )
    assert [c.response.type for c in transcript.tool_calls] == ["setup_requirements"]
    assert "blockpilot credentials add --user alice" in screen(console)
    assert '"provider": "openai"' in screen(console)


async def test_bad_tool_calls_are_answered_to_the_model_not_crashed_on(
    pilot: Pilot, alice: User, chat_llm: FakeOpenAI, console: Console
) -> None:
    chat_llm.script(
        [
            {"tool_calls": [{"name": "run_block", "arguments": "{not json"}]},
            tool("launch_rockets", target="moon"),
            tool("run_block", block_id=CALCULATOR, input_data="2+2"),
            tool("run_block", block_id=CALCULATOR, input_data={"operation": "add", "a": 2, "b": 2}),
            "2 + 2 = 4",
        ]
    )
    transcript = await run_chat(
        "alice",
        base_url=chat_llm.base_url,
        model="m",
        api_key=CHAT_KEY,
        console=console,
        pilot=pilot,
        message="2+2?",
    )
    codes = [getattr(c.response, "code", c.response.type) for c in transcript.tool_calls]
    assert codes == ["invalid_arguments", "tool_not_found", "invalid_input_data", "block_output"]
    assert transcript.answers == ["2 + 2 = 4"]


async def test_strict_tools_send_strict_schemas_and_restore_arguments(
    pilot: Pilot, alice: User, chat_llm: FakeOpenAI, console: Console
) -> None:
    chat_llm.script(
        [
            tool(
                "run_block",
                block_id=CALCULATOR,
                input_data='{"operation": "multiply", "a": 3, "b": 5}',
                dry_run=None,
            ),
            "15",
        ]
    )
    transcript = await run_chat(
        "alice",
        base_url=chat_llm.base_url,
        model="m",
        api_key=CHAT_KEY,
        console=console,
        pilot=pilot,
        message="3*5",
        tool_format="openai-strict",
    )
    assert transcript.tool_calls[0].response.outputs["result"] == [15]
    function = chat_llm.requests_to("/v1/chat/completions")[0].json()["tools"][1]["function"]
    assert function["strict"] is True and function["parameters"]["additionalProperties"] is False


async def test_a_model_that_never_stops_calling_tools_is_stopped(
    pilot: Pilot, alice: User, chat_llm: FakeOpenAI, console: Console
) -> None:
    chat_llm.script([tool("find_block", query="email")] * 3)
    transcript = await run_chat(
        "alice",
        base_url=chat_llm.base_url,
        model="m",
        api_key=CHAT_KEY,
        console=console,
        pilot=pilot,
        message="loop", max_tool_rounds=3,
    )  # fmt: skip
    assert len(transcript.tool_calls) == 3
    assert "Stopped after 3 rounds" in screen(console)


async def test_provider_errors_never_show_the_key(
    pilot: Pilot, alice: User, chat_llm: FakeOpenAI, console: Console
) -> None:
    wrong = "sk-wrong-key-0123456789abcdef"
    with pytest.raises(ChatProviderError) as caught:
        await run_chat(
            "alice",
            base_url=chat_llm.base_url,
            model="m",
            api_key=wrong,
            console=console,
            pilot=pilot,
            message="hi",
        )
    assert "401" in caught.value.message and wrong not in caught.value.message


async def test_an_interactive_chat_survives_a_provider_error(
    pilot: Pilot, alice: User, chat_llm: FakeOpenAI, console: Console
) -> None:
    from blockpilot.testing import Response

    chat_llm.queue_response(
        Response.json({"error": {"message": "overloaded"}}, status=503), method="POST"
    )
    chat_llm.script(["hello again"])
    transcript = await run_chat(
        "alice",
        base_url=chat_llm.base_url,
        model="m",
        api_key=CHAT_KEY,
        console=console,
        pilot=pilot,
        read_input=inputs("hi", "hi again", "exit", "never read"),
    )  # fmt: skip
    assert "error: The chat model answered HTTP 503: overloaded" in screen(console)
    assert transcript.answers == ["hello again"]
    assert [m["content"] for m in transcript.messages if m["role"] == "user"] == [
        "hi again"
    ]  # failed turn rolled back


async def test_unknown_user_and_missing_configuration(
    pilot: Pilot, chat_llm: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(UserNotFoundError):
        await run_chat("nobody", base_url=chat_llm.base_url, model="m", pilot=pilot, message="hi")
    for name in ("BLOCKPILOT_CHAT_BASE_URL", "BLOCKPILOT_CHAT_MODEL", "BLOCKPILOT_CHAT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="BLOCKPILOT_CHAT_BASE_URL"):
        await run_chat("alice", model="m", pilot=pilot, message="hi")
    with pytest.raises(ConfigurationError, match="BLOCKPILOT_CHAT_MODEL"):
        ChatConfig.resolve(base_url="http://localhost:1/v1")
    with pytest.raises(ConfigurationError, match="http"):
        ChatConfig.resolve(base_url="file:///etc/passwd", model="m")
    config = ChatConfig.resolve(
        env={
            "BLOCKPILOT_CHAT_BASE_URL": "http://h/v1/",
            "BLOCKPILOT_CHAT_MODEL": "x",
            "BLOCKPILOT_CHAT_API_KEY": "k" * 12,
        }
    )
    assert (config.base_url, config.model) == ("http://h/v1", "x")
    assert "k" * 12 not in repr(config)


def test_main_reads_the_environment_and_opens_its_own_pilot(
    settings_factory: Any,
    chat_llm: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import anyio

    settings = settings_factory()
    monkeypatch.setenv("BLOCKPILOT_HOME", str(settings.home))
    monkeypatch.setenv("BLOCKPILOT_ENCRYPTION_KEYS", settings.encryption_keys[0].get_secret_value())
    monkeypatch.setenv("BLOCKPILOT_CHAT_BASE_URL", chat_llm.base_url)
    monkeypatch.setenv("BLOCKPILOT_CHAT_MODEL", "gpt-4o-mini")
    monkeypatch.setenv("BLOCKPILOT_CHAT_API_KEY", CHAT_KEY)

    async def create_user() -> None:
        async with await Pilot.open() as pilot:
            await pilot.users.create("dora")

    anyio.run(create_user)
    chat_llm.script([tool("find_block", query="email"), "Found the e-mail block."])
    transcript = main("dora", message="find email")
    assert transcript.answers == ["Found the e-mail block."]
    assert "Found the e-mail block." in capsys.readouterr().out
