"""A fake Notion API: search, pages, block children, databases and their queries, with the
``Notion-Version`` header required, cursor pagination and Notion's error objects."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from ._http import LOCALHOST, RecordedRequest, Response
from ._provider import TokenAPIServer, page_of

_CODES = {
    400: "validation_error",
    401: "unauthorized",
    404: "object_not_found",
    409: "conflict_error",
    429: "rate_limited",
    500: "internal_server_error",
}


def _key(notion_id: str) -> str:
    return notion_id.replace("-", "").lower()


def _rich(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"content": text}, "plain_text": text}]


def _stored(block: dict[str, Any]) -> dict[str, Any]:
    """A block as Notion stores it: with an id and ``plain_text`` on its rich text."""
    kind = str(block.get("type") or "")
    body = dict(block.get(kind) or {})
    body["rich_text"] = [
        {**part, "plain_text": (part.get("text") or {}).get("content", "")}
        for part in body.get("rich_text") or []
        if isinstance(part, dict)
    ]
    return {"object": "block", "id": str(uuid.uuid4()), "type": kind, kind: body}


class FakeNotion(TokenAPIServer):
    """``POST /v1/search``, ``GET /v1/pages/{id}``, ``POST /v1/pages``,
    ``GET``/``PATCH /v1/blocks/{id}/children``, ``GET /v1/databases/{id}`` and
    ``POST /v1/databases/{id}/query``. Ids are accepted with or without dashes. Requests
    need ``Authorization: Bearer <token>`` and a ``Notion-Version`` header."""

    def __init__(self, tokens: Iterable[str] | None = None, *, host: str = LOCALHOST) -> None:
        super().__init__(tokens=tokens, host=host)
        self.pages: dict[str, dict[str, Any]] = {}
        self.children: dict[str, list[dict[str, Any]]] = {}
        self.databases: dict[str, dict[str, Any]] = {}
        self.add_route("POST", "/v1/search", self._search)
        self.add_route("GET", "/v1/pages/{id}", self._get_page)
        self.add_route("POST", "/v1/pages", self._create_page)
        self.add_route("GET", "/v1/blocks/{id}/children", self._get_children)
        self.add_route("PATCH", "/v1/blocks/{id}/children", self._append_children)
        self.add_route("GET", "/v1/databases/{id}", self._get_database)
        self.add_route("POST", "/v1/databases/{id}/query", self._query_database)

    # -- data -------------------------------------------------------------------------

    def add_page(
        self,
        title: str,
        blocks: Iterable[tuple[str, str]] = (),
        *,
        parent: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
    ) -> str:
        """Add a page with ``(type, text)`` blocks (``paragraph``, ``heading_1``, ...)."""
        page_id = str(uuid.uuid4())
        props = properties or {"title": {"id": "title", "type": "title", "title": _rich(title)}}
        with self._lock:
            self.pages[_key(page_id)] = {
                "object": "page",
                "id": page_id,
                "parent": parent or {"type": "workspace", "workspace": True},
                "url": f"https://www.notion.so/{_key(page_id)}",
                "last_edited_time": "2026-12-01T09:00:00.000Z",
                "properties": props,
            }
            self.children[_key(page_id)] = [
                {"object": "block", "id": str(uuid.uuid4()), "type": kind,
                 kind: {"rich_text": _rich(text)}}
                for kind, text in blocks
            ]  # fmt: skip
        return page_id

    def add_database(self, title: str, rows: Iterable[dict[str, Any]] = ()) -> str:
        """Add a database whose title property is ``Name``; *rows* map property names to
        Notion property values (``{"Name": "x", "Status": {"select": {"name": "Done"}}}``)."""
        database_id = str(uuid.uuid4())
        with self._lock:
            self.databases[_key(database_id)] = {
                "object": "database",
                "id": database_id,
                "title": _rich(title),
                "url": f"https://www.notion.so/{_key(database_id)}",
                "last_edited_time": "2026-12-01T09:00:00.000Z",
                "properties": {"Name": {"id": "title", "type": "title", "title": {}}},
            }
        for row in rows:
            props: dict[str, Any] = {}
            for name, value in row.items():
                if name == "Name":
                    props[name] = {"type": "title", "title": _rich(str(value))}
                else:
                    kind = next(iter(value))
                    props[name] = {"type": kind, **value}
            self.add_page(
                str(row.get("Name", "")),
                parent={"type": "database_id", "database_id": database_id},
                properties=props,
            )
        return database_id

    def page(self, page_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self.pages.get(_key(page_id))

    # -- protocol ---------------------------------------------------------------------

    def error_response(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        return Response.json(
            {
                "object": "error",
                "status": status,
                "code": _CODES.get(status, "internal_server_error"),
                "message": message,
            },
            status,
            headers=headers,
        )

    def _check(self, request: RecordedRequest) -> Response | None:
        if self.authenticate(request) is not None:
            return self.error_response(401, "API token is invalid.")
        if not request.header("notion-version"):
            return self.error_response(
                400, "Notion-Version header failed validation: Notion-Version should be defined"
            )
        return None

    def _listing(self, items: list[dict[str, Any]], cursor: str | None, size: Any) -> Response:
        start = int(cursor or 0)
        chunk, nxt = page_of(items, start, max(1, min(100, int(size or 100))))
        return Response.json(
            {
                "object": "list",
                "results": chunk,
                "next_cursor": None if nxt is None else str(nxt),
                "has_more": nxt is not None,
            }
        )

    def _search(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        failed = self._check(request)
        if failed:
            return failed
        body = request.json() or {}
        query = str(body.get("query") or "").lower()
        kind = (body.get("filter") or {}).get("value")
        with self._lock:
            objects = [*self.pages.values(), *self.databases.values()]
        found = []
        for obj in objects:
            if kind and obj["object"] != kind:
                continue
            title_parts = (
                obj["title"]
                if obj["object"] == "database"
                else next(
                    (p["title"] for p in obj["properties"].values() if p.get("type") == "title"),
                    [],
                )
            )
            title = "".join(p["plain_text"] for p in title_parts)
            if query in title.lower():
                found.append(obj)
        return self._listing(found, body.get("start_cursor"), body.get("page_size"))

    def _get_page(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        failed = self._check(request)
        if failed:
            return failed
        page = self.page(params["id"])
        if page is None:
            return self.error_response(
                404, f"Could not find page with ID: {params['id']}. Make sure the relevant "
                "pages and databases are shared with your integration.",
            )  # fmt: skip
        return Response.json(page)

    def _get_children(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        failed = self._check(request)
        if failed:
            return failed
        with self._lock:
            blocks = self.children.get(_key(params["id"]))
        if blocks is None:
            return self.error_response(404, f"Could not find block with ID: {params['id']}.")
        return self._listing(
            list(blocks), request.query.get("start_cursor"), request.query.get("page_size")
        )

    def _append_children(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        failed = self._check(request)
        if failed:
            return failed
        children = (request.json() or {}).get("children") or []
        if len(children) > 100:
            return self.error_response(400, "body.children.length should be ≤ `100`")
        with self._lock:
            blocks = self.children.get(_key(params["id"]))
            if blocks is None:
                return self.error_response(404, f"Could not find block with ID: {params['id']}.")
            blocks.extend(_stored(child) for child in children)
        return Response.json({"object": "list", "results": children, "has_more": False})

    def _create_page(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        failed = self._check(request)
        if failed:
            return failed
        body = request.json() or {}
        parent = body.get("parent") or {}
        children = body.get("children") or []
        if len(children) > 100:
            return self.error_response(400, "body.children.length should be ≤ `100`")
        with self._lock:
            if "database_id" in parent:
                ok = _key(parent["database_id"]) in self.databases
            else:
                ok = _key(str(parent.get("page_id", ""))) in self.pages
        if not ok:
            return self.error_response(404, "Could not find the parent page or database.")
        props = body.get("properties") or {}
        for prop in props.values():
            for part in prop.get("title") or []:
                part.setdefault("plain_text", part.get("text", {}).get("content", ""))
        page_id = self.add_page("", parent=parent, properties={
            name: {"type": "title", **value} for name, value in props.items()
        })  # fmt: skip
        with self._lock:
            self.children[_key(page_id)] = [_stored(child) for child in children]
            return Response.json(self.pages[_key(page_id)])

    def _get_database(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        failed = self._check(request)
        if failed:
            return failed
        with self._lock:
            database = self.databases.get(_key(params["id"]))
        if database is None:
            return self.error_response(404, f"Could not find database with ID: {params['id']}.")
        return Response.json(database)

    def _query_database(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        failed = self._check(request)
        if failed:
            return failed
        key = _key(params["id"])
        with self._lock:
            if key not in self.databases:
                return self.error_response(404, f"Could not find database with ID: {params['id']}.")
            rows = [
                p
                for p in self.pages.values()
                if _key(str(p["parent"].get("database_id", ""))) == key
            ]
        body = request.json() or {}
        return self._listing(rows, body.get("start_cursor"), body.get("page_size"))
