"""The LangChain tools, driven by LangChain's own agent loop (``create_agent``) with a
scripted fake chat model."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from blockpilot.testing import FakeAnthropic
from tests.frameworks.scenario import ANSWER, Script, check_conversation

pytest.importorskip("langchain_core")
pytest.importorskip("langchain.agents")

from langchain.agents import create_agent  # noqa: E402
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: E402

from blockpilot.integrations.langchain import langchain_tools  # noqa: E402


class ScriptedChatModel(GenericFakeChatModel):
    """LangChain's fake chat model, answering from a :class:`Script` (with tool calls)."""

    script: Any
    seen_tools: list[Any] = []

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        self.seen_tools[:] = list(tools)
        return self

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        last = str(results[-1].content) if results else None
        move = await self.script.next(last)
        if isinstance(move, str):
            message = AIMessage(content=move)
        else:
            name, arguments = move
            call_id = f"call_{self.script.step}"
            message = AIMessage(
                content="", tool_calls=[{"name": name, "args": arguments, "id": call_id}]
            )
        return ChatResult(generations=[ChatGeneration(message=message)])


async def test_two_users_agents_in_parallel_find_setup_connect_run(
    pilot: Pilot, alice: User, bob: User, anthropic: FakeAnthropic
) -> None:
    scripts = {u.name: Script(pilot, u) for u in (alice, bob)}
    models = {}
    for user in (alice, bob):
        await scripts[user.name].start()
        models[user.name] = ScriptedChatModel(
            messages=iter(()), script=scripts[user.name], seen_tools=[]
        )

    async def run(user: User) -> str:
        agent = create_agent(models[user.name], tools=langchain_tools(pilot, user_id=user.id))
        state = await agent.ainvoke({"messages": [("user", scripts[user.name].prompt)]})
        return str(state["messages"][-1].content)

    answers = await asyncio.gather(run(alice), run(bob))

    assert answers == [ANSWER, ANSWER]
    for script in scripts.values():
        check_conversation(script, anthropic)
    assert scripts["alice"].results[0]["session_id"] != scripts["bob"].results[0]["session_id"]
    tools = {t.name: t for t in models["alice"].seen_tools}
    assert list(tools) == list(pilot.tools)
    run_block = pilot.tools["run_block"]
    assert tools["run_block"].description == run_block.description
    assert set(tools["run_block"].args) == set(run_block.parameters["properties"])


async def test_sync_calls_from_a_worker_thread_share_the_session(pilot: Pilot, alice: User) -> None:
    tools = {t.name: t for t in langchain_tools(pilot, user_id=alice.id)}
    first = json.loads(await asyncio.to_thread(tools["find_block"].invoke, {"query": "calculator"}))
    second = json.loads(await tools["run_block"].ainvoke({"block_id": "nope", "input_data": {}}))
    assert first["type"] == "block_list" and second["type"] == "error"
    assert first["session_id"] == second["session_id"] is not None


async def test_a_session_of_another_user_is_not_found(pilot: Pilot, alice: User, bob: User) -> None:
    [alices] = [t for t in langchain_tools(pilot, user_id=alice.id) if t.name == "find_block"]
    session = json.loads(await alices.ainvoke({"query": "email"}))["session_id"]
    [bobs] = [
        t
        for t in langchain_tools(pilot, user_id=bob.id, session_id=session)
        if t.name == "find_block"
    ]
    result = json.loads(await bobs.ainvoke({"query": "email"}))
    assert result["type"] == "error" and "not found" in result["message"]
