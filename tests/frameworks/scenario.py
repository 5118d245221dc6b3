"""One conversation every adapter test plays through its framework's own agent loop:
find → details ({}) → setup requirements → the person connects an account → run → answer.

The scripted model is framework-neutral: each framework's test model asks :meth:`Script.next`
for its next move, giving it the last tool result it saw.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from blockpilot.testing import FakeAnthropic
from blockpilot.tools.schemas import encode_arguments

AI_BLOCK = "1f292d4a-41a4-4977-9684-7c8d560b9f91"
KEYS = {"alice": "sk-ant-alice-canary-0123456789", "bob": "sk-ant-bob-canary-9876543210"}
ANSWER = "Here is your haiku."
PUBLIC_URL = "https://bp.example"


@dataclass
class Script:
    """The moves of one user's agent, and what the tools answered."""

    pilot: Pilot
    user: User
    strict: bool = False
    results: list[dict[str, Any]] = field(default_factory=list)
    step: int = 0

    @property
    def prompt(self) -> str:
        return f"Write a haiku about {self.user.name}'s bees"

    async def start(self) -> None:
        """The user has an OpenAI account connected (so ``{}`` shows the block's details);
        the scenario connects Anthropic when the model relays the setup link."""
        await self.pilot.add_credentials(
            self.user.id,
            {
                "provider": "openai",
                "type": "api_key",
                "api_key": f"sk-openai-{self.user.name}-0123",
            },
        )

    def moves(self) -> list[tuple[str, dict[str, Any]] | str]:
        run = {"prompt": self.prompt, "model": "claude-sonnet-4-5"}
        return [
            ("find_block", {"query": "generate text with an AI model"}),
            ("run_block", {"block_id": AI_BLOCK, "input_data": {}}),
            ("run_block", {"block_id": AI_BLOCK, "input_data": run}),
            ("run_block", {"block_id": AI_BLOCK, "input_data": run}),
            ANSWER,
        ]

    async def next(self, last_result: str | None) -> tuple[str, dict[str, Any]] | str:
        """The model's next move after seeing *last_result* (None before the first call)."""
        if last_result is not None:
            result = json.loads(last_result)
            self.results.append(result)
            if result["type"] == "setup_requirements":
                # The person opens the link the model relayed and connects their account.
                await self.pilot.add_credentials(
                    self.user.id,
                    {
                        "provider": "anthropic",
                        "type": "api_key",
                        "api_key": KEYS[self.user.name],
                    },
                )
        move = self.moves()[self.step]
        self.step += 1
        if isinstance(move, tuple) and self.strict:
            name, arguments = move
            schema = self.pilot.tools[name].parameters
            return name, encode_arguments(schema, arguments, "openai-strict")
        return move


def check_conversation(script: Script, anthropic: FakeAnthropic) -> None:
    """The tools answered each move as the conversation expects, in one session, for this
    user only; the model saw this user's setup link and no secret."""
    user = script.user
    assert [r["type"] for r in script.results] == [
        "block_list",
        "block_details",
        "setup_requirements",
        "block_output",
    ], script.results
    sessions = {r["session_id"] for r in script.results}
    assert len(sessions) == 1 and None not in sessions
    [entry] = script.results[2]["setup_info"]["requirements"]["credentials"]
    token = entry["setup_url"].removeprefix(f"{PUBLIC_URL}/setup/")  # relayable
    grant = script.pilot.setup_links.verify(token)
    assert (grant.user_id, grant.provider) == (user.id, "anthropic")
    assert script.results[3]["outputs"]["response"] == [f"echo: {script.prompt}"]
    seen = json.dumps(script.results)
    assert all(key not in seen for key in KEYS.values())  # canaries: no secret reaches it
    links = re.findall(r"bp\.example/setup/([\w.-]+)", seen)
    assert {script.pilot.setup_links.verify(t).user_id for t in links} == {user.id}
    # The block ran with this user's own key.
    [request] = [r for r in anthropic.requests if script.prompt in r.body.decode(errors="replace")]
    assert request.header("x-api-key") == KEYS[user.name]
