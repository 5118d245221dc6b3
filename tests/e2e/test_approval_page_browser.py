"""The approval page in Chromium (docs/approvals.md): two users, two browser contexts.

The service runs under uvicorn in its own thread; the copilot's calls go over real HTTP with
each user's API key; people act only through the browser. Alice's browser approves her
review; Bob's browser (signed in to blockpilot for Bob by opening his own setup link) cannot
decide Alice's; a used link and an expired one are refused.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from blockpilot.api import create_app
from blockpilot.api.server import server_config
from blockpilot.approvals.policy import Decision, PolicyRule, Selector
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from tests.e2e.test_setup_page_browser import AI_TEXT, CHROMIUM, in_own_thread

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the 'test' extra")

STORE_VALUE = "1ff065e9-88e8-4358-9d82-8dc91f622ba9"
MARKUP = '<img src=x onerror="document.title=\'pwned\'"> & "quotes"'


@dataclass(frozen=True)
class Service:
    base_url: str
    keys: dict[str, str]

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.keys[user]}"},
            trust_env=False,
            timeout=30,
        )


def run(client: httpx.Client, block_id: str, input_data: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/api/v1/tools/run_block", json={"block_id": block_id, "input_data": input_data}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def service(settings_factory: Callable[..., Settings]) -> Iterator[Service]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = settings_factory(public_url=base_url, review_ttl_seconds=60)

    async def create_users() -> str:
        async with await Pilot.open(settings) as pilot:
            keys = []
            for name in ("alice", "bob"):
                user, key = await pilot.users.create(name)
                await pilot.policies.add(
                    PolicyRule(Selector.EFFECT, "read", Decision.ASK, user_id=user.id)
                )
                keys.append(key)
            return "\n".join(keys)

    alice_key, bob_key = in_own_thread(create_users).split("\n")

    async def open_pilot() -> Pilot:
        return await Pilot.open(settings)

    server = uvicorn.Server(
        server_config(create_app(pilot_factory=open_pilot), host="127.0.0.1", port=0)
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        for _ in range(1000):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.01)
        assert server.started, "the server did not start"
        yield Service(base_url, {"alice": alice_key, "bob": bob_key})
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield launched
        finally:
            launched.close()


def test_approve_in_the_browser_runs_once_and_the_link_is_spent(
    service: Service, browser: Any
) -> None:
    expect = sync_api.expect
    alice_browser = browser.new_context()
    try:
        with service.client("alice") as alice:
            asked = run(alice, STORE_VALUE, {"input": MARKUP})
            assert asked["type"] == "review_required"
            page = alice_browser.new_page()
            page.goto(asked["approval_url"])
            expect(page).to_have_title("Approve a copilot action · blockpilot")
            # The inputs are shown exactly, as text: the markup did not run.
            expect(page.locator("#inputs")).to_contain_text(MARKUP.replace('"', '\\"'))
            expect(page.locator("#block-name")).to_have_text("StoreValueBlock")
            expect(page.locator("#user-name")).to_have_text("alice")
            assert page.locator("#inputs img").count() == 0
            page.locator("#approve").click()
            expect(page.get_by_role("status")).to_contain_text("Approved")
            assert page.title() != "pwned"

            ran = run(alice, STORE_VALUE, {"input": MARKUP})
            assert ran["type"] == "block_output" and ran["outputs"] == {"output": [MARKUP]}
            # The same link again: shown, but it cannot decide anything any more.
            page.goto(asked["approval_url"])
            expect(page.get_by_role("alert")).to_contain_text("has run")
            assert page.locator("#approve").count() == 0
            again = run(alice, STORE_VALUE, {"input": MARKUP})
            assert again["type"] == "review_required"
    finally:
        alice_browser.close()


def test_a_browser_signed_in_for_another_user_cannot_decide(service: Service, browser: Any) -> None:
    expect = sync_api.expect
    bob_browser = browser.new_context()
    try:
        with service.client("bob") as bob, service.client("alice") as alice:
            # Bob opens his own setup link: his browser is now signed in for Bob.
            needs = run(bob, AI_TEXT, {"prompt": "hi", "model": "gpt-4o-mini"})
            [entry] = needs["setup_info"]["user_readiness"]["missing_credentials"].values()
            page = bob_browser.new_page()
            page.goto(entry["setup_url"])
            asked = run(alice, STORE_VALUE, {"input": "alice's"})
            page.goto(asked["approval_url"])
            expect(page.get_by_role("alert")).to_contain_text("another user")
            assert page.locator("#approve").count() == 0
            status = alice.get(f"/api/v1/reviews/{asked['review_id']}").json()["status"]
            assert status == "pending"
            still = run(alice, STORE_VALUE, {"input": "alice's"})
            assert still["type"] == "review_required"
    finally:
        bob_browser.close()
