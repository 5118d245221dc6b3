"""Local stand-ins for third-party services, for testing blocks that call them
(docs/testing.md: every fake, and how to write one for another service).

Every server in this module speaks the *real* wire protocol of the service it
imitates (HTTP+JSON, OAuth2 form posts and redirects, SMTP with AUTH) over a real
TCP socket bound to ``127.0.0.1`` on an ephemeral port, and runs in a background
daemon thread.  A block under test therefore talks to it with its ordinary HTTP or
SMTP client -- nothing is monkeypatched -- and the test then asserts on what the
server received.

All servers are context managers (``start()`` / ``stop()`` also work), record what
they receive in a thread-safe way, and can be reset between test phases.

Only the standard library is imported at module import time; ``aiosmtpd`` is
imported when a :class:`FakeSMTP` is started, uvicorn when :func:`serve_asgi` (which
serves an ASGI app, such as blockpilot's own, over real HTTP) is used.

Example pytest fixtures::

    import httpx
    import pytest

    from blockpilot.testing import FakeOpenAI, FakeOAuthProvider

    @pytest.fixture
    def openai_server():
        with FakeOpenAI(api_keys={"sk-test"}) as srv:
            yield srv

    def test_chat(openai_server):
        r = httpx.post(
            f"{openai_server.base_url}/chat/completions",
            headers={"Authorization": "Bearer sk-test"},
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert r.json()["choices"][0]["message"]["content"] == "echo: hi"
        assert openai_server.hits == 1
        assert openai_server.last_request.json()["model"] == "gpt-4o-mini"
"""

from __future__ import annotations

from ._http import LocalHTTPServer, RecordedRequest, Response
from .airtable import FakeAirtable
from .asgi import serve_asgi
from .discord import FakeDiscord
from .github import FakeGitHub
from .google import FakeGoogle
from .hubspot import FakeHubSpot
from .jira import FakeJira
from .linear import FakeLinear
from .llm import FakeAnthropic, FakeOpenAI
from .notion import FakeNotion
from .oauth import FakeOAuthProvider, pkce_challenge, pkce_pair
from .search import FakeExa, FakeJina, FakeOpenWeatherMap
from .slack import FakeSlack
from .smtp import FakeSMTP, ReceivedEmail
from .telegram import FakeTelegram
from .todoist import FakeTodoist

__all__ = [
    "FakeAirtable",
    "FakeAnthropic",
    "FakeDiscord",
    "FakeExa",
    "FakeGitHub",
    "FakeJina",
    "FakeGoogle",
    "FakeHubSpot",
    "FakeJira",
    "FakeLinear",
    "FakeNotion",
    "FakeOAuthProvider",
    "FakeOpenAI",
    "FakeOpenWeatherMap",
    "FakeSMTP",
    "FakeSlack",
    "FakeTelegram",
    "FakeTodoist",
    "LocalHTTPServer",
    "ReceivedEmail",
    "RecordedRequest",
    "Response",
    "pkce_challenge",
    "pkce_pair",
    "serve_asgi",
]
