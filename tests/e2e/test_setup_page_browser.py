"""The setup page end to end: a real server, a real browser, real protocols.

``blockpilot``'s app runs under uvicorn on a free port; Debian's ``chromium`` is driven by
Playwright (its own driver; no browser download). The copilot's side is plain HTTP: call
``run_block``, get ``setup_requirements`` with a ``setup_url``, open that URL in the
browser as the person would, fill the form or click "Connect", and call the same
``run_block`` again, which now returns ``block_output``. The LLM, the OAuth provider and
GitHub are local servers speaking their real protocols.

The first test saves ``docs/setup-page.png`` (the filled setup page), which the README shows.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from blockpilot.api import create_app
from blockpilot.api.server import server_config
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.testing import FakeGitHub, FakeOAuthProvider, FakeOpenAI, RecordedRequest, Response

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "setup-page.png"
AI_TEXT = "1f292d4a-41a4-4977-9684-7c8d560b9f91"
GITHUB_ISSUE = "b4a3c2f1-6e5d-4c8b-9a7f-0e1d2c3b4a59"
OPENAI_KEY = "sk-e2e-browser-5b1f0c9d8e7a6f43"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium (.ci/run installs it: "
    "apt-get install chromium)",
)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the 'test' extra")


class GitHubTrustingProvider(FakeGitHub):
    """A GitHub API that accepts the access tokens the local OAuth provider issued."""

    def __init__(self, provider: FakeOAuthProvider) -> None:
        super().__init__(login="mona")
        self.provider = provider

    def _authenticate(self, request: RecordedRequest) -> tuple[str | None, Response | None]:
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and self.provider.access_token_valid(token.strip()):
            self.allow_token(token.strip())
        return super()._authenticate(request)


@dataclass(frozen=True)
class Service:
    base_url: str
    api_key: str
    openai: FakeOpenAI
    github: GitHubTrustingProvider
    oauth: FakeOAuthProvider

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            trust_env=False,
            timeout=30,
        )


def run_block(
    client: httpx.Client, block_id: str, input_data: dict[str, Any], session: str | None = None
) -> dict[str, Any]:
    headers = {"X-Session-Id": session} if session else {}
    response = client.post(
        "/api/v1/tools/run_block",
        json={"block_id": block_id, "input_data": input_data},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return response.json()


def in_own_thread(make: Callable[[], Coroutine[Any, Any, str]]) -> str:
    """Run a coroutine to completion off this thread (Playwright's sync API holds its loop)."""
    results: list[str] = []
    worker = threading.Thread(target=lambda: results.append(asyncio.run(make())))
    worker.start()
    worker.join(60)
    assert results, "the coroutine did not finish"
    return results[0]


@pytest.fixture
def service(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Service]:
    with (
        FakeOpenAI(api_keys={OPENAI_KEY}) as openai,
        FakeOAuthProvider(client_id="gh-app", client_secret="gh-app-secret", login="mona") as oauth,
    ):
        github = GitHubTrustingProvider(oauth).start()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        settings = settings_factory(public_url=base_url)  # clears BLOCKPILOT_* first
        for name, value in {
            "OPENAI_BASE_URL": openai.base_url,
            "GITHUB_BASE_URL": github.base_url,
            "GITHUB_CLIENT_ID": "gh-app",
            "GITHUB_CLIENT_SECRET": "gh-app-secret",
            "GITHUB_AUTHORIZE_URL": oauth.authorize_url,
            "GITHUB_TOKEN_URL": oauth.token_url,
        }.items():
            monkeypatch.setenv(f"BLOCKPILOT_PROVIDER_{name}", value)

        async def create_user() -> str:
            async with await Pilot.open(settings) as pilot:
                _, api_key = await pilot.users.create("alice")
                return api_key

        api_key = in_own_thread(create_user)

        async def open_pilot() -> Pilot:
            return await Pilot.open(settings)

        server = uvicorn.Server(
            server_config(create_app(pilot_factory=open_pilot), host="127.0.0.1", port=0)
        )
        thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True
        )
        thread.start()
        try:
            for _ in range(1000):
                if server.started or not thread.is_alive():
                    break
                threading.Event().wait(0.01)
            assert server.started, "the server did not start"
            yield Service(base_url, api_key, openai, github, oauth)
        finally:
            server.should_exit = True
            thread.join(15)
            sock.close()
            github.stop()


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


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 960, "height": 900}, locale="en-US")
    try:
        yield context.new_page()
    finally:
        context.close()


def test_api_key_from_the_setup_page_lets_the_same_run_block_call_succeed(
    service: Service, page: Any
) -> None:
    expect = sync_api.expect
    args = {"prompt": "Say hello to the setup page", "model": "gpt-4o-mini"}
    with service.client() as client:
        first = run_block(client, AI_TEXT, args)
        assert first["type"] == "setup_requirements", first
        [entry] = first["setup_info"]["user_readiness"]["missing_credentials"].values()
        setup_url = entry["setup_url"]
        assert setup_url.startswith(service.base_url + "/setup/")
        assert service.api_key not in setup_url

        page.goto(setup_url)
        expect(page).to_have_title("Connect OpenAI · blockpilot")
        expect(page.get_by_role("heading", level=1)).to_have_text("Connect OpenAI to continue")
        expect(page.get_by_role("main")).to_contain_text("AI Text Generator")
        # Accessibility basics the browser can tell: every visible input has a label, and the
        # keyboard reaches the skip link first, then the API key field.
        unlabelled = page.evaluate(
            "[...document.querySelectorAll('input:not([type=hidden])')]"
            ".filter(i => i.labels.length === 0).map(i => i.name)"
        )
        assert unlabelled == []
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.get_by_label("OpenAI API key")).to_be_focused()

        page.get_by_label("OpenAI API key").fill(OPENAI_KEY)
        page.get_by_label("Name for this credential (optional)").fill("Work key")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        page.get_by_role("button", name="Save API key").click()

        expect(page.get_by_role("status")).to_have_text(
            "Connected. Go back to the chat and ask the copilot to continue."
        )
        assert OPENAI_KEY not in page.content()

        second = run_block(client, AI_TEXT, args, session=first["session_id"])
        assert second["type"] == "block_output", second
        assert second["outputs"]["response"] == ["echo: Say hello to the setup page"]
        assert OPENAI_KEY not in str(second)
        assert service.openai.last_request is not None
        assert service.openai.last_request.header("authorization") == f"Bearer {OPENAI_KEY}"


def test_connect_button_runs_the_oauth_flow_in_the_browser(service: Service, page: Any) -> None:
    expect = sync_api.expect
    service.github.add_issue("octo", "demo", 7, "Setup page works", body="from the browser")
    args = {"issue_url": f"{service.github.base_url}/repos/octo/demo/issues/7"}
    with service.client() as client:
        first = run_block(client, GITHUB_ISSUE, args)
        assert first["type"] == "setup_requirements", first
        [entry] = first["setup_info"]["user_readiness"]["missing_credentials"].values()

        page.goto(entry["setup_url"])
        page.get_by_role("button", name="Connect GitHub").click()
        # The provider approves and sends the browser back to the callback, which asks this
        # browser (signed in as alice by the setup link) to confirm who gets which account.
        page.wait_for_url(f"{service.base_url}/api/v1/integrations/github/callback?*")
        expect(page.get_by_role("heading", level=1)).to_have_text("Connect GitHub to alice?")
        expect(page.get_by_role("main")).to_contain_text("mona")
        page.get_by_role("button", name="Connect GitHub").click()
        expect(page.get_by_role("status")).to_have_text(
            "Connected. Go back to the chat and ask the copilot to continue."
        )
        expect(page.get_by_role("main")).to_contain_text("mona")
        expect(page.get_by_role("main")).to_contain_text("repo")

        second = run_block(client, GITHUB_ISSUE, args, session=first["session_id"])
        assert second["type"] == "block_output", second
        assert second["outputs"]["title"] == ["Setup page works"]
        assert second["outputs"]["user"] == ["octocat"]


def credentials_of(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/api/v1/credentials")
    assert response.status_code == 200, response.text
    return list(response.json()["credentials"])


def test_a_forwarded_link_connects_nothing_in_another_browser(
    service: Service, browser: Any
) -> None:
    """OAuth account-linking CSRF (issue 11, item 2), in two browser contexts.

    Alice starts a connect and forwards the provider's sign-in link to another person (the
    attack: a provider that skips consent sends that person's browser straight back). Their
    browser has no blockpilot session for Alice: nothing is connected. A forwarded setup link
    signs the other browser in as Alice, but the confirm page names Alice and the account,
    and "Do not connect" stores nothing. Alice's own browser then connects, once.
    """
    expect = sync_api.expect
    service.github.add_issue("octo", "demo", 8, "Two browsers", body="csrf")
    args = {"issue_url": f"{service.github.base_url}/repos/octo/demo/issues/8"}
    alice_context = browser.new_context(locale="en-US")
    other_context = browser.new_context(locale="en-US")
    try:
        alice_page, other_page = alice_context.new_page(), other_context.new_page()
        with service.client() as client:
            first = run_block(client, GITHUB_ISSUE, args)
            [entry] = first["setup_info"]["user_readiness"]["missing_credentials"].values()

            # 1. Alice's browser starts the connect; she copies the provider's sign-in link
            #    instead of following it (her browser's own request, cookies and all).
            alice_page.goto(entry["setup_url"])
            csrf = alice_page.locator("input[name=csrf]").first.get_attribute("value")
            started = alice_context.request.post(
                entry["setup_url"] + "/connect", form={"csrf": csrf}, max_redirects=0
            )
            assert started.status == 303, started.text()
            captured = [started.headers["location"]]
            assert captured[0].startswith(service.oauth.authorize_url + "?")

            # 2. The other person opens it: the provider sends them back at once, and their
            #    browser is not signed in as Alice.
            service.github.login = "someone-else"
            other_page.goto(captured[0])
            other_page.wait_for_url(f"{service.base_url}/api/v1/integrations/github/callback?*")
            expect(other_page.get_by_role("heading", level=1)).to_have_text(
                "Could not connect GitHub"
            )
            expect(other_page.get_by_role("alert")).to_contain_text("not signed in to blockpilot")
            expect(other_page.get_by_role("alert")).to_contain_text("Nothing was saved")
            assert credentials_of(client) == []

            # 3. A forwarded setup link: the confirm page names Alice and the account.
            other_page.goto(entry["setup_url"])
            other_page.get_by_role("button", name="Connect GitHub").click()
            expect(other_page.get_by_role("heading", level=1)).to_have_text(
                "Connect GitHub to alice?"
            )
            expect(other_page.get_by_role("main")).to_contain_text("someone-else")
            other_page.get_by_role("button", name="Do not connect").click()
            expect(other_page.get_by_role("alert")).to_contain_text("was not connected")
            assert credentials_of(client) == []
            assert run_block(client, GITHUB_ISSUE, args)["type"] == "setup_requirements"

            # 4. Alice's own browser connects her account.
            service.github.login = "mona"
            alice_page.goto(entry["setup_url"])
            alice_page.get_by_role("button", name="Connect GitHub").click()
            expect(alice_page.get_by_role("heading", level=1)).to_have_text(
                "Connect GitHub to alice?"
            )
            alice_page.get_by_role("button", name="Connect GitHub").click()
            expect(alice_page.get_by_role("status")).to_contain_text("Connected.")
            expect(alice_page.get_by_role("main")).to_contain_text("mona")
            [stored] = credentials_of(client)
            assert stored["provider"] == "github" and stored["title"] == "GitHub (mona)"
            second = run_block(client, GITHUB_ISSUE, args, session=first["session_id"])
            assert second["type"] == "block_output", second

            # 5. The link stored its credential: it is used up (issue 11, item 8).
            other_page.goto(entry["setup_url"])
            expect(other_page.get_by_role("heading", level=1)).to_have_text(
                "This setup link was already used"
            )
            assert len(credentials_of(client)) == 1
    finally:
        alice_context.close()
        other_context.close()
