"""Web blocks: read a page as text, read a feed, Wikipedia summaries, web search, weather.

Pages and feeds are fetched through the guarded client like any model-chosen URL (no
internal addresses, redirects re-checked); search and weather keys go only to their
provider's API host (docs/blocks-catalogue.md).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.library._html import html_to_markdown
from blockpilot.blocks.library._provider_api import Provider, trim
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import APIKeyCredentials, CredentialsMetaInput
from blockpilot.errors import UpstreamAPIError
from blockpilot.executions.context import ExecutionContext

USER_AGENT = "blockpilot/1.0 (+https://github.com/blockpilot; built-in web blocks)"
MAX_PAGE_BYTES = 5 * 1024 * 1024
EXA = Provider.known("exa")
JINA = Provider.known("jina")
OPENWEATHERMAP = Provider.known("openweathermap")
WIKIPEDIA = Provider("wikipedia", "Wikipedia", "https://{lang}.wikipedia.org")
_LANG = re.compile(r"^[a-z]{2,3}(-[a-z]{2,8})?$")


def _check_url(url: str) -> str:
    text = url.strip()
    if not re.match(r"^https?://", text, re.I):
        raise ValueError("url must start with http:// or https://")
    return text


class ExtractWebsiteContentBlock(Block):
    id = "14262b66-b8ab-41d5-84e0-839e67ed7bdc"
    effect = BlockEffect.READ
    description = (
        "Reads a web page (website URL) and gives its text as clean Markdown (no scripts, "
        "styles or menus), with its title and links."
    )
    categories = frozenset({BlockCategory.SEARCH})

    class Input(BlockSchemaInput):
        url: str = SchemaField(description="The page's URL (http or https)", max_length=8192)
        raw_content: bool = SchemaField(
            default=False, description="Return the raw HTML instead of clean text"
        )
        max_characters: Integer = SchemaField(
            default=20_000,
            ge=100,
            le=200_000,
            description="Cut the text after this many characters",
        )

    class Output(BlockSchemaOutput):
        content: str = SchemaField(description="The page's text (Markdown) or raw HTML")
        title: str = SchemaField(description="The page title")
        links: list[dict[str, str]] = SchemaField(description="Links on the page: text and url")

    async def run(
        self, input_data: Input, *, execution_context: ExecutionContext, **kwargs: Any
    ) -> BlockOutput:
        response = await execution_context.http.request(
            "GET",
            _check_url(input_data.url),
            headers={"User-Agent": USER_AGENT, "Accept": "text/html,text/plain;q=0.9,*/*;q=0.5"},
            max_bytes=MAX_PAGE_BYTES,
        )
        if response.status_code >= 400:
            yield "error", f"The page answered HTTP {response.status_code}"
            return
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind and not (
            kind.startswith("text/")
            or kind in ("application/xhtml+xml", "application/json", "application/xml")
        ):
            yield "error", f"The URL is not a web page (content type {kind})"
            return
        body = response.text
        if input_data.raw_content or kind in ("text/plain", "application/json"):
            yield "content", trim(body, input_data.max_characters)
            yield "title", ""
            yield "links", []
            return
        page = html_to_markdown(body, response.url)
        yield "content", trim(page["text"], input_data.max_characters)
        yield "title", page["title"]
        yield "links", page["links"][:200]


def _child_text(element: Any, *names: str) -> str:
    for name in names:
        found = element.find(name)
        if found is not None:
            text: str = found.text.strip() if found.text else ""
            if text:
                return text
            href: str | None = found.get("href")
            if href:
                return href
    return ""


def _parse_date(text: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_feed(xml: str) -> list[dict[str, Any]]:
    """Entries of an RSS 2.0, RSS 1.0 (RDF) or Atom feed, newest information kept as given."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        root = fromstring(xml, forbid_dtd=True)
    except DefusedXmlException:
        raise ValueError("The feed uses a DOCTYPE or entities, which are refused") from None
    except ParseError as exc:
        raise ValueError(f"The feed is not valid XML: {exc}") from None
    atom = "{http://www.w3.org/2005/Atom}"
    rss1 = "{http://purl.org/rss/1.0/}"
    dc = "{http://purl.org/dc/elements/1.1/}"
    content = "{http://purl.org/rss/1.0/modules/content/}"
    entries: list[dict[str, Any]] = []
    if root.tag == f"{atom}feed":
        for item in root.findall(f"{atom}entry"):
            link = next(
                (
                    el.get("href", "")
                    for el in item.findall(f"{atom}link")
                    if el.get("rel", "alternate") == "alternate"
                ),
                "",
            )
            entries.append(
                {
                    "title": _child_text(item, f"{atom}title"),
                    "link": link,
                    "description": _child_text(item, f"{atom}summary", f"{atom}content"),
                    "pub_date": _child_text(item, f"{atom}published", f"{atom}updated"),
                    "author": _child_text(item.find(f"{atom}author") or item, f"{atom}name"),
                    "categories": [c.get("term", "") for c in item.findall(f"{atom}category")],
                }
            )
        return entries
    items = root.findall("./channel/item") or root.findall(f"{rss1}item")
    for item in items:
        ns = rss1 if item.tag.startswith(rss1) else ""
        entries.append(
            {
                "title": _child_text(item, f"{ns}title"),
                "link": _child_text(item, f"{ns}link"),
                "description": _child_text(item, f"{ns}description", f"{content}encoded"),
                "pub_date": _child_text(item, "pubDate", f"{dc}date"),
                "author": _child_text(item, "author", f"{dc}creator"),
                "categories": [c.text or "" for c in item.findall("category")],
            }
        )
    if not entries and root.tag not in ("rss", "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}RDF"):
        raise ValueError("This is XML but not an RSS or Atom feed")
    return entries


class ReadRSSFeedBlock(Block):
    id = "f0b2fb1c-3f77-4981-935a-f0b0a948b65b"
    effect = BlockEffect.READ
    description = (
        "Reads an RSS or Atom feed (news, blog, podcast) and returns its latest entries: title, "
        "link, summary and date."
    )
    categories = frozenset({BlockCategory.SEARCH, BlockCategory.INPUT})

    class Input(BlockSchemaInput):
        rss_url: str = SchemaField(description="URL of the RSS or Atom feed", max_length=8192)
        time_period: Integer = SchemaField(
            default=0,
            ge=0,
            le=10_000_000,
            description="Only entries from the last this-many minutes (0: all)",
        )
        max_entries: Integer = SchemaField(default=20, ge=1, le=500, description="Most entries")

    class Output(BlockSchemaOutput):
        entries: list[dict[str, Any]] = SchemaField(description="Entries, in feed order")
        entry: dict[str, Any] = SchemaField(description="Each entry, one at a time")

    async def run(
        self, input_data: Input, *, execution_context: ExecutionContext, **kwargs: Any
    ) -> BlockOutput:
        response = await execution_context.http.request(
            "GET",
            _check_url(input_data.rss_url),
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, "
                "*/*;q=0.5",
            },
            max_bytes=MAX_PAGE_BYTES,
        )
        if response.status_code >= 400:
            yield "error", f"The feed answered HTTP {response.status_code}"
            return
        entries = parse_feed(response.text)
        if input_data.time_period:
            since = datetime.now(UTC) - timedelta(minutes=input_data.time_period)
            entries = [
                e for e in entries if (when := _parse_date(e["pub_date"])) is None or when >= since
            ]
        entries = [
            {
                **e,
                "title": trim(e["title"], 500),
                "description": trim(html_to_markdown(e["description"])["text"], 2000),
            }
            for e in entries[: input_data.max_entries]
        ]
        yield "entries", entries
        for entry in entries:
            yield "entry", entry


class GetWikipediaSummaryBlock(Block):
    id = "5694fb7b-d918-4537-9450-559278325962"
    effect = BlockEffect.READ
    description = "Gets the summary (lead section) of a Wikipedia article about a topic."
    categories = frozenset({BlockCategory.SEARCH})

    class Input(BlockSchemaInput):
        topic: str = SchemaField(
            description="Article title, e.g. 'Alan Turing'", min_length=1, max_length=300
        )
        language: str = SchemaField(
            default="en", description="Wikipedia language code, e.g. en, de"
        )

    class Output(BlockSchemaOutput):
        summary: str = SchemaField(description="The article's summary")
        title: str = SchemaField(description="The article's title")
        url: str = SchemaField(description="Link to the article")

    async def run(
        self, input_data: Input, *, execution_context: ExecutionContext, **kwargs: Any
    ) -> BlockOutput:
        lang = input_data.language.strip().lower()
        if not _LANG.match(lang):
            yield "error", "language must be a Wikipedia language code such as en, de or pt-br"
            return
        base = execution_context.provider_base_url("wikipedia") or WIKIPEDIA.default_base.format(
            lang=lang
        )
        title = quote(input_data.topic.strip().replace(" ", "_"), safe="")
        try:
            page = await WIKIPEDIA.call(
                execution_context,
                "GET",
                f"/api/rest_v1/page/summary/{title}",
                headers={"User-Agent": USER_AGENT},
                base=base.rstrip("/"),
            )
        except UpstreamAPIError as exc:
            if exc.details.get("status") == 404:
                yield (
                    "error",
                    f"Wikipedia has no article named {input_data.topic!r}; try another title",
                )
                return
            raise
        if not isinstance(page, dict):
            page = {}
        yield "summary", trim(page.get("extract"), 5000)
        yield "title", str(page.get("title") or "")
        yield "url", str(((page.get("content_urls") or {}).get("desktop") or {}).get("page") or "")


def _search_key(provider: str, label: str) -> Any:
    return CredentialsField(
        providers=[provider], supported_types=["api_key"], description=f"{label} API key"
    )


class ExaSearchBlock(Block):
    id = "7800a4a5-3623-4471-96ec-22eb998c2241"
    effect = BlockEffect.READ
    description = (
        "Searches the web with Exa (neural search) and returns matching pages with title, URL, "
        "date and a text excerpt."
    )
    categories = frozenset({BlockCategory.SEARCH})

    class Input(BlockSchemaInput):
        query: str = SchemaField(description="What to search for", min_length=1, max_length=2000)
        number_of_results: Integer = SchemaField(default=10, ge=1, le=100, description="Results")
        include_domains: list[str] = SchemaField(
            default_factory=list, description="Only these domains", max_length=50
        )
        start_published_date: str = SchemaField(
            default="", description="Only pages published after this date (ISO 8601)"
        )
        credentials: CredentialsMetaInput = _search_key("exa", "Exa")

    class Output(BlockSchemaOutput):
        results: list[dict[str, Any]] = SchemaField(description="Results: title, url, text…")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: APIKeyCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        body: dict[str, Any] = {
            "query": input_data.query,
            "numResults": input_data.number_of_results,
            "type": "auto",
            "contents": {"text": {"maxCharacters": 1000}},
        }
        if input_data.include_domains:
            body["includeDomains"] = input_data.include_domains
        if input_data.start_published_date:
            body["startPublishedDate"] = input_data.start_published_date
        payload = await EXA.call(
            execution_context,
            "POST",
            "/search",
            json=body,
            auth={"x-api-key": credentials.api_key.get_secret_value()},
        )
        results = payload.get("results") if isinstance(payload, dict) else None
        yield (
            "results",
            [
                {
                    "title": trim(r.get("title"), 300),
                    "url": r.get("url") or "",
                    "published_date": r.get("publishedDate") or "",
                    "author": r.get("author") or "",
                    "text": trim(r.get("text"), 1000),
                }
                for r in results or []
                if isinstance(r, dict)
            ],
        )


class SearchTheWebBlock(Block):
    id = "4b77770c-e853-45d2-934a-4bae2bcba04c"
    effect = BlockEffect.READ
    description = (
        "Searches the web (a Google-like internet search) with Jina Search and returns the top "
        "pages with title, URL, description and content."
    )
    categories = frozenset({BlockCategory.SEARCH})

    class Input(BlockSchemaInput):
        query: str = SchemaField(description="What to search for", min_length=1, max_length=2000)
        max_results: Integer = SchemaField(default=5, ge=1, le=20, description="Most results")
        credentials: CredentialsMetaInput = _search_key("jina", "Jina")

    class Output(BlockSchemaOutput):
        results: list[dict[str, Any]] = SchemaField(description="Results: title, url, content…")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: APIKeyCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        payload = await JINA.call(
            execution_context,
            "GET",
            "/",
            params={"q": input_data.query},
            headers={"X-Retain-Images": "none"},
            auth={"Authorization": credentials.auth_header()},
        )
        data = payload.get("data") if isinstance(payload, dict) else None
        yield (
            "results",
            [
                {
                    "title": trim(r.get("title"), 300),
                    "url": r.get("url") or "",
                    "description": trim(r.get("description"), 500),
                    "content": trim(r.get("content"), 3000),
                }
                for r in (data or [])[: input_data.max_results]
                if isinstance(r, dict)
            ],
        )


class GetWeatherInformationBlock(Block):
    id = "f07432c8-717f-4b33-886e-6a714bd4d432"
    effect = BlockEffect.READ
    description = (
        "Gets the current weather of a place (temperature, humidity, conditions, wind) from "
        "OpenWeatherMap."
    )
    categories = frozenset({BlockCategory.SEARCH})

    class Input(BlockSchemaInput):
        location: str = SchemaField(
            description="City, optionally with country code, e.g. 'Paris,FR'",
            min_length=1,
            max_length=200,
        )
        use_celsius: bool = SchemaField(default=True, description="Celsius (else Fahrenheit)")
        credentials: CredentialsMetaInput = _search_key("openweathermap", "OpenWeatherMap")

    class Output(BlockSchemaOutput):
        temperature: str = SchemaField(description="Temperature, in the chosen unit")
        humidity: str = SchemaField(description="Relative humidity in percent")
        condition: str = SchemaField(description="Conditions, e.g. 'light rain'")
        wind_speed: str = SchemaField(description="Wind speed (m/s, or mph in Fahrenheit)")
        location: str = SchemaField(description="The place the weather is for")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: APIKeyCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        # OpenWeatherMap takes the key only as the appid query parameter; the request goes to
        # its API host alone, and the key is scrubbed from anything the run reports.
        payload = await OPENWEATHERMAP.call(
            execution_context,
            "GET",
            "/data/2.5/weather",
            params={
                "q": input_data.location,
                "units": "metric" if input_data.use_celsius else "imperial",
                "appid": credentials.api_key.get_secret_value(),
            },
        )
        weather = payload if isinstance(payload, dict) else {}
        main = weather.get("main") or {}
        conditions = weather.get("weather") or [{}]
        yield "temperature", str(main.get("temp", ""))
        yield "humidity", str(main.get("humidity", ""))
        yield "condition", str(conditions[0].get("description", ""))
        yield "wind_speed", str((weather.get("wind") or {}).get("speed", ""))
        yield "location", str(weather.get("name") or input_data.location)
