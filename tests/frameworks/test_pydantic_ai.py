"""The Pydantic AI toolset, driven by Pydantic AI's own agent loop with a FunctionModel."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest

from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from blockpilot.testing import FakeAnthropic
from tests.frameworks.scenario import ANSWER, Script, check_conversation

pydantic_ai = pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent  # noqa: E402
from pydantic_ai.messages import (  # noqa: E402
    ModelMessage,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel  # noqa: E402

from blockpilot.integrations.pydantic_ai import BlockpilotToolset  # noqa: E402


@dataclass
class Deps:
    user_id: str


def scripted(script: Script, seen_tools: list[Any]) -> FunctionModel:
    async def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen_tools[:] = info.function_tools
        returns = [
            part
            for message in messages
            for part in getattr(message, "parts", ())
            if isinstance(part, ToolReturnPart)
        ]
        last = returns[-1].model_response_str() if returns else None
        move = await script.next(last if len(returns) > len(script.results) else None)
        if isinstance(move, str):
            return ModelResponse(parts=[TextPart(move)])
        name, arguments = move
        return ModelResponse(parts=[ToolCallPart(name, arguments)])

    return FunctionModel(model)


async def test_two_users_agents_in_parallel_find_setup_connect_run(
    pilot: Pilot, alice: User, bob: User, anthropic: FakeAnthropic
) -> None:
    # One toolset for the app; the user comes from each run's dependencies.
    toolset = BlockpilotToolset(pilot, user_id=lambda ctx: ctx.deps.user_id)
    scripts = {u.name: Script(pilot, u) for u in (alice, bob)}
    seen_tools: dict[str, list[Any]] = {"alice": [], "bob": []}
    for script in scripts.values():
        await script.start()

    async def run(user: User) -> str:
        agent = Agent(
            scripted(scripts[user.name], seen_tools[user.name]),
            deps_type=Deps,
            toolsets=[toolset],
        )
        result = await agent.run(scripts[user.name].prompt, deps=Deps(user.id))
        return result.output

    answers = await asyncio.gather(run(alice), run(bob))

    assert answers == [ANSWER, ANSWER]
    for script in scripts.values():
        check_conversation(script, anthropic)
    assert scripts["alice"].results[0]["session_id"] != scripts["bob"].results[0]["session_id"]
    # The model saw the tools' own descriptions and schemas.
    tools = {t.name: t for t in seen_tools["alice"]}
    assert list(tools) == list(pilot.tools)
    run_block = pilot.tools["run_block"]
    assert tools["run_block"].description == run_block.description
    assert set(tools["run_block"].parameters_json_schema["properties"]) == set(
        run_block.parameters["properties"]
    )


async def test_a_fixed_user_and_an_error_is_a_result_not_a_crash(pilot: Pilot, alice: User) -> None:
    calls = iter(
        [
            ("run_block", {"block_id": "no-such-block", "input_data": {}}),
            ("get_execution", {"execution_id": "nope", "user_id": "someone-else"}),
        ]
    )
    results: list[str] = []

    async def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returns = [
            p for m in messages for p in getattr(m, "parts", ()) if isinstance(p, ToolReturnPart)
        ]
        if returns:
            results.append(returns[-1].model_response_str())
        move = next(calls, None)
        if move is None:
            return ModelResponse(parts=[TextPart("done")])
        return ModelResponse(parts=[ToolCallPart(*move)])

    agent = Agent(FunctionModel(model), toolsets=[BlockpilotToolset(pilot, user_id=alice.id)])
    result = await agent.run("go")
    assert result.output == "done"
    assert [json.loads(r)["type"] for r in results] == ["error", "error"]
    # Arguments the model makes up never choose the user: the call ran as alice.
    assert {json.loads(r)["session_id"] for r in results} != {None}
