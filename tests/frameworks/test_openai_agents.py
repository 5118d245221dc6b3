"""The OpenAI Agents SDK function tools, driven by the SDK's own ``Runner`` with a scripted
``Model``; the schemas are the strict ones and the model's strict arguments are restored."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from blockpilot.testing import FakeAnthropic
from blockpilot.tools.schemas import export_tool
from tests.frameworks.scenario import ANSWER, Script, check_conversation

pytest.importorskip("agents")

from agents import Agent, Model, ModelResponse, RunConfig, Runner, Usage  # noqa: E402
from openai.types.responses import (  # noqa: E402
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from blockpilot.integrations.openai_agents import openai_agents_tools  # noqa: E402


class ScriptedModel(Model):
    """A ``Model`` that answers from a :class:`Script` and records the tools it was given."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.seen_tools: list[Any] = []

    async def get_response(
        self, system_instructions: Any, input: Any, model_settings: Any, tools: Any, *a: Any,
        **kw: Any,
    ) -> ModelResponse:  # fmt: skip
        self.seen_tools = list(tools)
        outputs = [
            i for i in (input if isinstance(input, list) else [])
            if isinstance(i, dict) and i.get("type") == "function_call_output"
        ]  # fmt: skip
        last = str(outputs[-1]["output"]) if outputs else None
        move = await self.script.next(last)
        if isinstance(move, str):
            item: Any = ResponseOutputMessage(
                id=f"msg_{self.script.step}",
                type="message",
                role="assistant",
                status="completed",
                content=[ResponseOutputText(type="output_text", text=move, annotations=[])],
            )
        else:
            name, arguments = move
            item = ResponseFunctionToolCall(
                id=f"fc_{self.script.step}",
                call_id=f"call_{self.script.step}",
                type="function_call",
                name=name,
                arguments=json.dumps(arguments),
            )
        return ModelResponse(output=[item], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError


async def test_two_users_agents_in_parallel_find_setup_connect_run(
    pilot: Pilot, alice: User, bob: User, anthropic: FakeAnthropic
) -> None:
    scripts = {u.name: Script(pilot, u, strict=True) for u in (alice, bob)}
    models = {name: ScriptedModel(script) for name, script in scripts.items()}
    for script in scripts.values():
        await script.start()

    async def run(user: User) -> str:
        agent = Agent(
            name="copilot",
            model=models[user.name],
            tools=openai_agents_tools(pilot, user_id=user.id),
        )
        result = await Runner.run(
            agent, scripts[user.name].prompt, run_config=RunConfig(tracing_disabled=True)
        )
        return str(result.final_output)

    answers = await asyncio.gather(run(alice), run(bob))

    assert answers == [ANSWER, ANSWER]
    for script in scripts.values():
        check_conversation(script, anthropic)
    assert scripts["alice"].results[0]["session_id"] != scripts["bob"].results[0]["session_id"]
    # The model got the strict definitions every strict client gets.
    tools = {t.name: t for t in models["alice"].seen_tools}
    assert list(tools) == list(pilot.tools)
    for name, tool in tools.items():
        strict = export_tool(pilot.tools[name], "openai-strict")["function"]
        assert tool.strict_json_schema is True
        assert tool.params_json_schema == strict["parameters"]
        assert tool.description == strict["description"]


async def test_arguments_that_are_not_json_are_a_result_not_a_crash(
    pilot: Pilot, alice: User
) -> None:
    [tool] = [t for t in openai_agents_tools(pilot, user_id=alice.id) if t.name == "find_block"]
    result = json.loads(await tool.on_invoke_tool(None, "{not json"))  # type: ignore[arg-type]
    assert result["type"] == "error" and result["code"] == "invalid_arguments"
