"""Web blocks: pages, feeds and Wikipedia from local servers; Exa, Jina and OpenWeatherMap fakes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blockpilot.blocks.library.web import (
    ExaSearchBlock,
    ExtractWebsiteContentBlock,
    GetWeatherInformationBlock,
    GetWikipediaSummaryBlock,
    ReadRSSFeedBlock,
    SearchTheWebBlock,
)
from blockpilot.testing import FakeExa, FakeJina, FakeOpenWeatherMap, LocalHTTPServer, Response

from .lib_provider_helpers import (
    add_key,
    assert_failed,
    assert_ok,
    elsewhere,
    headers_seen,
    missing_credentials,
    provider_pilot,
    redirect_everything,
    run,
)

EXA_KEY = "exa-canary-0123456789abcdef"
JINA_KEY = "jina_canary0123456789abcdef"
OWM_KEY = "owmcanary0123456789abcdef0123"
PAGE = """<!doctype html><html><head><title>Release notes</title>
<style>body{color:red}</style><script>track()</script></head>
<body><nav><a href="/">Home</a></nav><h1>Version 2.0</h1>
<p>Faster <b>startup</b> and a <a href="/docs">new guide</a>.</p>
<ul><li>Fix A</li><li>Fix B</li></ul></body></html>"""
RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title>
<item><title>Newest post</title><link>https://blog.example/new</link>
<description>&lt;p&gt;Hello &lt;b&gt;world&lt;/b&gt;&lt;/p&gt;</description>
<pubDate>{now}</pubDate><category>news</category></item>
<item><title>Old post</title><link>https://blog.example/old</link>
<description>Old</description><pubDate>Mon, 01 Jan 2018 10:00:00 +0000</pubDate></item>
</channel></rss>"""
ATOM = """<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">
<title>Atom blog</title><entry><title>Atom entry</title>
<link rel="alternate" href="https://atom.example/1"/><updated>2026-01-01T00:00:00Z</updated>
<summary>Short</summary><author><name>Ann</name></author><category term="tech"/></entry></feed>"""
WIKI = {
    "type": "standard",
    "title": "Alan Turing",
    "extract": "Alan Mathison Turing was an English mathematician and computer scientist.",
    "content_urls": {"desktop": {"page": "https://en.wikipedia.org/wiki/Alan_Turing"}},
}


@pytest.fixture
def site() -> Iterator[LocalHTTPServer]:
    from datetime import UTC, datetime
    from email.utils import format_datetime

    now = format_datetime(datetime.now(UTC))
    with LocalHTTPServer() as srv:
        srv.add_route(
            "GET",
            "/notes",
            Response(200, PAGE.encode(), {"Content-Type": "text/html; charset=utf-8"}),
        )
        srv.add_route(
            "GET", "/file.zip", Response(200, b"PK\x03\x04", {"Content-Type": "application/zip"})
        )
        srv.add_route(
            "GET",
            "/feed.xml",
            Response(
                200, RSS.replace("{now}", now).encode(), {"Content-Type": "application/rss+xml"}
            ),
        )
        srv.add_route(
            "GET",
            "/atom.xml",
            Response(200, ATOM.encode(), {"Content-Type": "application/atom+xml"}),
        )
        srv.add_route(
            "GET",
            "/notfeed.xml",
            Response(200, b"<html><body/></html>", {"Content-Type": "text/xml"}),
        )
        srv.add_route("GET", "/api/rest_v1/page/summary/Alan_Turing", Response.json(WIKI))
        srv.add_route(
            "GET",
            "/api/rest_v1/page/summary/{title}",
            lambda req, p: (
                Response.json(
                    {
                        "type": "https://mediawiki.org/wiki/HyperSwitch/errors/not_found",
                        "title": "Not found.",
                    },
                    404,
                )
                if p["title"] != "Alan_Turing"
                else Response.json(WIKI)
            ),
        )
        yield srv


@pytest.fixture
def exa() -> Iterator[FakeExa]:
    with FakeExa({EXA_KEY}) as srv:
        yield srv


@pytest.fixture
def jina() -> Iterator[FakeJina]:
    with FakeJina({JINA_KEY}) as srv:
        yield srv


@pytest.fixture
def owm() -> Iterator[FakeOpenWeatherMap]:
    with FakeOpenWeatherMap({OWM_KEY}) as srv:
        yield srv


@pytest.fixture
def other() -> Iterator[LocalHTTPServer]:
    with elsewhere() as srv:
        yield srv


@pytest.fixture
async def env(make_pilot, monkeypatch, site, exa, jina, owm, other):
    bases = {
        "exa": exa.base_url,
        "jina": jina.base_url,
        "openweathermap": owm.base_url,
        "wikipedia": site.origin,
    }
    return await provider_pilot(
        make_pilot,
        monkeypatch,
        bases,
        allowed=[f"127.0.0.1:{site.port}", f"127.0.0.1:{other.port}"],
    )


async def test_page_becomes_clean_markdown(env, site) -> None:
    pilot, alice, _ = env
    out = assert_ok(
        await run(pilot, alice, ExtractWebsiteContentBlock.id, {"url": site.url("/notes")})
    )
    text = out["content"][0]
    assert text.startswith("# Version 2.0")
    assert "Faster **startup** and a [new guide](" in text and "- Fix A\n- Fix B" in text
    assert "track()" not in text and "color:red" not in text and "Home" not in text
    assert out["title"] == ["Release notes"]
    assert out["links"][0] == [{"text": "new guide", "url": site.url("/docs")}]
    raw = assert_ok(
        await run(
            pilot,
            alice,
            ExtractWebsiteContentBlock.id,
            {"url": site.url("/notes"), "raw_content": True},
        )
    )
    assert "<script>" in raw["content"][0]
    r = await run(pilot, alice, ExtractWebsiteContentBlock.id, {"url": site.url("/file.zip")})
    assert_failed(r, "not a web page")


async def test_internal_addresses_are_refused(env, site) -> None:
    pilot, alice, _ = env
    with LocalHTTPServer() as hidden:  # loopback, not allowed
        hidden.add_route("GET", "/", Response.text("secret"))
        for block, field in ((ExtractWebsiteContentBlock, "url"), (ReadRSSFeedBlock, "rss_url")):
            r = await run(pilot, alice, block.id, {field: hidden.url("/")})
            assert r["type"] == "error" and "blocked" in r["message"].lower(), r
        r = await run(pilot, alice, ExtractWebsiteContentBlock.id, {"url": "file:///etc/passwd"})
        assert_failed(r, "http")
        assert hidden.hits == 0


async def test_rss_and_atom_feeds(env, site) -> None:
    pilot, alice, _ = env
    out = assert_ok(
        await run(pilot, alice, ReadRSSFeedBlock.id, {"rss_url": site.url("/feed.xml")})
    )
    entries = out["entries"][0]
    assert [e["title"] for e in entries] == ["Newest post", "Old post"]
    assert entries[0]["description"] == "Hello **world**" and entries[0]["categories"] == ["news"]
    assert out["entry"] == entries
    recent = {"rss_url": site.url("/feed.xml"), "time_period": 60}
    out = assert_ok(await run(pilot, alice, ReadRSSFeedBlock.id, recent))
    assert [e["title"] for e in out["entries"][0]] == ["Newest post"]
    out = assert_ok(
        await run(pilot, alice, ReadRSSFeedBlock.id, {"rss_url": site.url("/atom.xml")})
    )
    assert out["entries"][0] == [
        {
            "title": "Atom entry",
            "link": "https://atom.example/1",
            "description": "Short",
            "pub_date": "2026-01-01T00:00:00Z",
            "author": "Ann",
            "categories": ["tech"],
        }
    ]
    r = await run(pilot, alice, ReadRSSFeedBlock.id, {"rss_url": site.url("/notfeed.xml")})
    assert_failed(r, "not an RSS or Atom feed")


async def test_wikipedia_summary(env, site) -> None:
    pilot, alice, _ = env
    out = assert_ok(await run(pilot, alice, GetWikipediaSummaryBlock.id, {"topic": "Alan Turing"}))
    assert out["summary"][0].startswith("Alan Mathison Turing")
    assert out["url"] == ["https://en.wikipedia.org/wiki/Alan_Turing"]
    assert "blockpilot" in site.last_request.header("user-agent")
    r = await run(pilot, alice, GetWikipediaSummaryBlock.id, {"topic": "No such page ../x"})
    assert_failed(r, "no article")
    assert site.last_request.path == "/api/rest_v1/page/summary/No_such_page_..%2Fx"
    r = await run(pilot, alice, GetWikipediaSummaryBlock.id, {"topic": "X", "language": "e/n"})
    assert_failed(r, "language")


async def test_exa_and_jina_search(env, exa, jina) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "exa", EXA_KEY)
    await add_key(pilot, alice, "jina", JINA_KEY)
    data = {"query": "python asyncio", "number_of_results": 1, "include_domains": ["python.org"]}
    out = assert_ok(await run(pilot, alice, ExaSearchBlock.id, data))
    assert out["results"][0] == [
        {
            "title": "Python asyncio documentation",
            "url": "https://docs.python.org/3/library/asyncio.html",
            "published_date": "2025-10-01T00:00:00.000Z",
            "author": "PSF",
            "text": "asyncio is a library to write concurrent code using the async/await syntax.",
        }
    ]
    assert exa.last_request.header("x-api-key") == EXA_KEY
    out = assert_ok(
        await run(pilot, alice, SearchTheWebBlock.id, {"query": "python asyncio", "max_results": 2})
    )
    assert [r["title"] for r in out["results"][0]] == [p["title"] for p in jina.pages]
    assert jina.last_request.query["q"] == "python asyncio"
    assert jina.last_request.header("authorization") == f"Bearer {JINA_KEY}"


async def test_weather(env, owm) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "openweathermap", OWM_KEY)
    out = assert_ok(
        await run(pilot, alice, GetWeatherInformationBlock.id, {"location": "Paris,FR"})
    )
    assert out == {
        "temperature": ["18.5"],
        "humidity": ["81"],
        "condition": ["light rain"],
        "wind_speed": ["4.1"],
        "location": ["Paris"],
    }
    data = {"location": "Paris", "use_celsius": False}
    out = assert_ok(await run(pilot, alice, GetWeatherInformationBlock.id, data))
    assert out["temperature"] == ["65.3"]
    r = await run(pilot, alice, GetWeatherInformationBlock.id, {"location": "Atlantis"})
    assert_failed(r, "HTTP 404", "city not found")
    records = await pilot.executions.list(alice.id)
    assert OWM_KEY not in repr(records)


KEYED = [
    (ExaSearchBlock, {"query": "x"}, "exa", EXA_KEY),
    (SearchTheWebBlock, {"query": "x"}, "jina", JINA_KEY),
    (GetWeatherInformationBlock, {"location": "Paris"}, "openweathermap", OWM_KEY),
]
KEYED_IDS = [k[0].__name__ for k in KEYED]


def _fake(provider, exa, jina, owm):
    return {"exa": exa, "jina": jina, "openweathermap": owm}[provider]


@pytest.mark.parametrize(("block", "data", "provider", "key"), KEYED, ids=KEYED_IDS)
async def test_missing_key_needs_setup(env, exa, jina, owm, block, data, provider, key) -> None:
    pilot, alice, bob = env
    await add_key(pilot, bob, "slack", "xoxb-other")
    for user in (alice, bob):
        missing = missing_credentials(await run(pilot, user, block.id, data))
        assert missing["provider"] == provider and missing["types"] == ["api_key"]
    assert _fake(provider, exa, jina, owm).hits == 0


@pytest.mark.parametrize(("block", "data", "provider", "key"), KEYED, ids=KEYED_IDS)
async def test_upstream_errors(env, exa, jina, owm, block, data, provider, key) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, provider, "wrong-key-0000")
    assert_failed(await run(pilot, alice, block.id, data), "HTTP 401")
    await add_key(pilot, alice, provider, key)
    _fake(provider, exa, jina, owm).rate_limit()
    r = await run(pilot, alice, block.id, data)
    assert_failed(r, "rate limit", "retry after")
    assert key not in str(r)


@pytest.mark.parametrize(("block", "data", "provider", "key"), KEYED, ids=KEYED_IDS)
async def test_key_never_reaches_another_host(
    env, exa, jina, owm, other, block, data, provider, key
):
    pilot, alice, _ = env
    await add_key(pilot, alice, provider, key)
    redirect_everything(_fake(provider, exa, jina, owm), other)
    r = await run(pilot, alice, block.id, data)
    assert other.hits >= 1
    assert key not in headers_seen(other)
    assert key not in str(r)
