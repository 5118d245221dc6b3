"""Notion blocks over the Notion API (https://developers.notion.com/reference), with an
internal integration token or a connected workspace (OAuth), and a pinned ``Notion-Version``.

Pages and databases are named by id or by their notion.so URL, which is only parsed.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.library._provider_api import MAX_PAGES, ProviderAPI, segment, trim
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import APIKeyCredentials, CredentialsMetaInput, OAuth2Credentials
from blockpilot.errors import BlockExecutionError
from blockpilot.executions.context import ExecutionContext

MAX_MARKDOWN_CHARS = 100_000
MAX_TEXT_CHARS = 2_000  # Notion's limit for one rich-text object
MAX_CHILDREN = 100  # Notion's limit of blocks per request
_ID = re.compile(r"([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})$")


def notion_id(value: str, field: str) -> str:
    """The id of a page or database from its id (with or without dashes) or notion.so URL."""
    text = value.strip().split("?", 1)[0].split("#", 1)[0].rstrip("/")
    match = _ID.search(text)
    if match is None or (text != match.group(1) and "notion.s" not in text.lower()):
        raise BlockExecutionError(f"{field} must be a Notion id or a notion.so page URL")
    return match.group(1).replace("-", "").lower()


def notion_credentials_field() -> Any:
    return CredentialsField(
        providers=["notion"],
        supported_types=["api_key", "oauth2"],
        description="Notion internal integration token or connected Notion workspace",
    )


def plain(rich: Any) -> str:
    """The plain text of a rich-text array."""
    if not isinstance(rich, list):
        return ""
    return "".join(str(part.get("plain_text") or "") for part in rich if isinstance(part, dict))


def title_of(obj: dict[str, Any]) -> str:
    """The title of a page (its ``title`` property) or of a database."""
    if obj.get("object") == "database":
        return plain(obj.get("title"))
    for prop in (obj.get("properties") or {}).values():
        if isinstance(prop, dict) and prop.get("type") == "title":
            return plain(prop.get("title"))
    return ""


def property_value(prop: dict[str, Any]) -> Any:
    """A database property as a plain value a model can read."""
    kind = prop.get("type")
    value = prop.get(kind) if isinstance(kind, str) else None
    if kind in ("title", "rich_text"):
        return plain(value)
    if kind in ("select", "status"):
        return (value or {}).get("name") if isinstance(value, dict) else None
    if kind == "multi_select":
        return [str(v.get("name")) for v in value or [] if isinstance(v, dict)]
    if kind == "date":
        return (value or {}).get("start") if isinstance(value, dict) else None
    if kind == "people":
        return [str(v.get("name") or v.get("id")) for v in value or [] if isinstance(v, dict)]
    if kind == "relation":
        return [str(v.get("id")) for v in value or [] if isinstance(v, dict)]
    if kind == "formula" and isinstance(value, dict):
        return value.get(str(value.get("type")))
    if kind in ("number", "checkbox", "url", "email", "phone_number", "created_time"):
        return value
    if kind == "last_edited_time":
        return value
    return None


_MARKDOWN_PREFIX = {
    "heading_1": "# ",
    "heading_2": "## ",
    "heading_3": "### ",
    "bulleted_list_item": "- ",
    "numbered_list_item": "1. ",
    "quote": "> ",
    "callout": "> ",
    "toggle": "- ",
}


def block_markdown(block: dict[str, Any]) -> str:
    """One Notion block as a line of Markdown (unknown kinds are left out)."""
    kind = str(block.get("type") or "")
    found = block.get(kind)
    body: dict[str, Any] = found if isinstance(found, dict) else {}
    text = plain(body.get("rich_text"))
    if kind == "paragraph":
        return text
    if kind in _MARKDOWN_PREFIX:
        return _MARKDOWN_PREFIX[kind] + text
    if kind == "to_do":
        return ("- [x] " if body.get("checked") else "- [ ] ") + text
    if kind == "code":
        return f"```{body.get('language') or ''}\n{text}\n```"
    if kind == "divider":
        return "---"
    if kind == "child_page":
        return f"[{body.get('title') or 'page'}]"
    return ""


def _text(content: str) -> list[dict[str, Any]]:
    return [
        {"type": "text", "text": {"content": content[i : i + MAX_TEXT_CHARS]}}
        for i in range(0, max(len(content), 1), MAX_TEXT_CHARS)
    ]


def markdown_blocks(markdown: str) -> list[dict[str, Any]]:
    """Simple Markdown (headings, bullets, to-dos, quotes, paragraphs) as Notion blocks."""
    blocks: list[dict[str, Any]] = []
    for line in markdown.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        kind, text = "paragraph", stripped
        for prefix, name in (
            ("### ", "heading_3"), ("## ", "heading_2"), ("# ", "heading_1"),
            ("- [ ] ", "to_do"), ("- [x] ", "to_do"), ("- ", "bulleted_list_item"),
            ("* ", "bulleted_list_item"), ("> ", "quote"),
        ):  # fmt: skip
            if stripped.startswith(prefix):
                kind, text = name, stripped[len(prefix) :]
                break
        body: dict[str, Any] = {"rich_text": _text(text)}
        if kind == "to_do":
            body["checked"] = stripped.startswith("- [x]")
        blocks.append({"object": "block", "type": kind, kind: body})
    return blocks


class NotionBlockBase(Block):
    """Shared plumbing: the Notion API with the token and the pinned version."""

    categories = frozenset({BlockCategory.PRODUCTIVITY})

    async def run(
        self,
        input_data: Any,
        *,
        credentials: APIKeyCredentials | OAuth2Credentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        api = ProviderAPI.known(
            execution_context, "notion", auth={"Authorization": credentials.auth_header()}
        )
        async for output in self.call(api, input_data):
            yield output

    def call(self, api: ProviderAPI, input_data: Any) -> BlockOutput:
        raise NotImplementedError

    @staticmethod
    async def cursor_pages(
        api: ProviderAPI, method: str, path: str, limit: int, body: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Up to *limit* results of a cursor-paginated list (``start_cursor``/``next_cursor``)."""
        results: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            size = min(100, limit - len(results))
            if method == "GET":
                page = await api.call(
                    "GET", path, params={"page_size": size, "start_cursor": cursor}
                )
            else:
                payload = {**(body or {}), "page_size": size}
                if cursor:
                    payload["start_cursor"] = cursor
                page = await api.call(method, path, json=payload)
            results += [r for r in page.get("results") or [] if isinstance(r, dict)]
            cursor = page.get("next_cursor") if page.get("has_more") else None
            if not cursor or len(results) >= limit:
                break
        return results[:limit]


class NotionSearchBlock(NotionBlockBase):
    id = "80ec5c10-0ef9-44b5-8b67-16221c686c87"
    effect = BlockEffect.READ
    description = (
        "Searches the user's Notion workspace for pages and databases by title; returns id, "
        "title, kind and URL of each."
    )
    categories = frozenset({BlockCategory.PRODUCTIVITY, BlockCategory.SEARCH})

    class Input(BlockSchemaInput):
        query: str = SchemaField(
            default="", description="Text to find in titles (empty: everything)", max_length=500
        )
        filter_type: Literal["any", "page", "database"] = SchemaField(
            default="any", description="Only pages, only databases, or both"
        )
        limit: Integer = SchemaField(default=20, ge=1, le=100, description="Most results")
        credentials: CredentialsMetaInput = notion_credentials_field()

    class Output(BlockSchemaOutput):
        results: list[dict[str, Any]] = SchemaField(
            description="Matches: id, object (page or database), title, url, last_edited_time"
        )

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        body: dict[str, Any] = {"query": input_data.query}
        if input_data.filter_type != "any":
            body["filter"] = {"property": "object", "value": input_data.filter_type}
        found = await self.cursor_pages(api, "POST", "/v1/search", input_data.limit, body)
        yield (
            "results",
            [
                {
                    "id": r.get("id"),
                    "object": r.get("object"),
                    "title": title_of(r),
                    "url": r.get("url"),
                    "last_edited_time": r.get("last_edited_time"),
                }
                for r in found
            ],
        )


class NotionReadPageMarkdownBlock(NotionBlockBase):
    id = "33858d41-3bc6-4dd4-b0a7-94f83dca4bbd"
    effect = BlockEffect.READ
    description = "Reads a Notion page and returns its title and content as Markdown."

    class Input(BlockSchemaInput):
        page_id: str = SchemaField(
            description="Page id or the page's notion.so URL", max_length=2048
        )
        credentials: CredentialsMetaInput = notion_credentials_field()

    class Output(BlockSchemaOutput):
        title: str = SchemaField(description="Title of the page")
        markdown: str = SchemaField(description="Content of the page as Markdown")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        page_id = notion_id(input_data.page_id, "page_id")
        page = await api.call("GET", f"/v1/pages/{segment(page_id)}")
        children = await self.cursor_pages(
            api, "GET", f"/v1/blocks/{segment(page_id)}/children", MAX_PAGES * 100
        )
        lines = [line for line in map(block_markdown, children) if line]
        yield "title", title_of(page)
        yield "markdown", trim("\n\n".join(lines), MAX_MARKDOWN_CHARS)


class NotionReadDatabaseBlock(NotionBlockBase):
    id = "566f8fe3-0c59-4bbd-958a-0412ebb9d398"
    effect = BlockEffect.READ
    description = (
        "Reads the entries (rows) of a Notion database with their properties as plain values."
    )
    categories = frozenset({BlockCategory.PRODUCTIVITY, BlockCategory.DATA})

    class Input(BlockSchemaInput):
        database_id: str = SchemaField(
            description="Database id or the database's notion.so URL", max_length=2048
        )
        limit: Integer = SchemaField(default=100, ge=1, le=500, description="Most entries")
        credentials: CredentialsMetaInput = notion_credentials_field()

    class Output(BlockSchemaOutput):
        entries: list[dict[str, Any]] = SchemaField(
            description="Entries: id, url and one key per database property"
        )
        count: int = SchemaField(description="Number of entries returned")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        database = notion_id(input_data.database_id, "database_id")
        rows = await self.cursor_pages(
            api, "POST", f"/v1/databases/{segment(database)}/query", input_data.limit, {}
        )
        entries = [
            {
                "id": row.get("id"),
                "url": row.get("url"),
                **{
                    str(name): property_value(prop)
                    for name, prop in (row.get("properties") or {}).items()
                    if isinstance(prop, dict)
                },
            }
            for row in rows
        ]
        yield "entries", entries
        yield "count", len(entries)


class NotionCreatePageBlock(NotionBlockBase):
    id = "0d5cf5c5-1c02-4ef5-a821-fd7bb9ed6334"
    effect = BlockEffect.WRITE
    description = (
        "Creates a new Notion page with a title and Markdown content, under a parent page or "
        "as a new entry of a database."
    )

    class Input(BlockSchemaInput):
        parent_page_id: str = SchemaField(
            default="", description="Parent page id or URL (or give parent_database_id)",
            max_length=2048,
        )  # fmt: skip
        parent_database_id: str = SchemaField(
            default="", description="Database id or URL to add the page to", max_length=2048
        )
        title: str = SchemaField(description="Title of the page", min_length=1, max_length=2000)
        content: str = SchemaField(
            default="", description="Content in simple Markdown (headings, bullets, paragraphs)",
            max_length=200_000,
        )  # fmt: skip
        credentials: CredentialsMetaInput = notion_credentials_field()

    class Output(BlockSchemaOutput):
        page_id: str = SchemaField(description="Id of the new page")
        url: str = SchemaField(description="URL of the new page")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        if bool(input_data.parent_page_id) == bool(input_data.parent_database_id):
            raise BlockExecutionError("Give exactly one of parent_page_id and parent_database_id")
        title = _text(input_data.title)
        if input_data.parent_database_id:
            database = notion_id(input_data.parent_database_id, "parent_database_id")
            schema = await api.call("GET", f"/v1/databases/{segment(database)}")
            title_property = next(
                (
                    str(name)
                    for name, prop in (schema.get("properties") or {}).items()
                    if isinstance(prop, dict) and prop.get("type") == "title"
                ),
                "Name",
            )
            parent: dict[str, Any] = {"database_id": database}
            properties: dict[str, Any] = {title_property: {"title": title}}
        else:
            parent = {"page_id": notion_id(input_data.parent_page_id, "parent_page_id")}
            properties = {"title": {"title": title}}
        children = markdown_blocks(input_data.content)
        page = await api.call(
            "POST",
            "/v1/pages",
            json={"parent": parent, "properties": properties, "children": children[:MAX_CHILDREN]},
        )
        page_id = str(page.get("id") or "")
        for start in range(MAX_CHILDREN, len(children), MAX_CHILDREN):
            await api.call(
                "PATCH",
                f"/v1/blocks/{segment(page_id)}/children",
                json={"children": children[start : start + MAX_CHILDREN]},
            )
        yield "page_id", page_id
        yield "url", str(page.get("url") or "")
