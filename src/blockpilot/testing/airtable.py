"""A fake Airtable Web API: bases, base schema and records.

As Airtable does it: ``Authorization: Bearer <token>``; lists page with ``offset``
(``pageSize`` at most 100); errors are ``{"error": {"type": …, "message": …}}``
(401 ``AUTHENTICATION_REQUIRED``, 404 ``NOT_FOUND``, 422 ``INVALID_RECORDS``…); 429 asks
to wait 30 seconds; writes take at most 10 records.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from ._http import LOCALHOST, LocalHTTPServer, RecordedRequest, Response, _bearer_token


def _error(status: int, kind: str, message: str) -> Response:
    return Response.json({"error": {"type": kind, "message": message}}, status)


class FakeAirtable(LocalHTTPServer):
    """``base_url`` is the equivalent of ``https://api.airtable.com/v0``.

    :meth:`add_base` makes a base with tables (by name, each with field names);
    :meth:`add_record` fills them. :attr:`tables` holds ``{(base, table name): {rec id:
    record}}``.
    """

    def __init__(self, tokens: Iterable[str] | None = None, *, host: str = LOCALHOST) -> None:
        super().__init__(host=host)
        self._tokens = set(tokens or ())
        self.bases: dict[str, dict[str, Any]] = {}
        self.tables: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self._schema: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self.add_route("GET", "/v0/{base}/{table}", self._list_records)
        self.add_route("POST", "/v0/{base}/{table}", self._create)
        self.add_route("PATCH", "/v0/{base}/{table}", self._update)
        self.add_route("GET", "/v0/{base}/{table}/{record}", self._get)
        # Added last so they win over the record routes, as Airtable's /meta paths do.
        self.add_route("GET", "/v0/meta/bases", self._list_bases)
        self.add_route("GET", "/v0/meta/bases/{base}/tables", self._tables)

    @property
    def base_url(self) -> str:
        return self.origin + "/v0"

    def _id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}{next(self._ids):014d}"

    def add_base(self, name: str, tables: dict[str, list[str]]) -> str:
        base_id = self._id("app")
        schema = []
        for table, fields in tables.items():
            table_id = self._id("tbl")
            field_defs = [
                {"id": self._id("fld"), "name": f, "type": "singleLineText"} for f in fields
            ]
            schema.append(
                {
                    "id": table_id,
                    "name": table,
                    "primaryFieldId": field_defs[0]["id"],
                    "fields": field_defs,
                    "views": [{"id": self._id("viw"), "name": "Grid view", "type": "grid"}],
                }
            )
            self.tables[(base_id, table)] = {}
        with self._lock:
            self.bases[base_id] = {"id": base_id, "name": name, "permissionLevel": "create"}
            self._schema[base_id] = schema
        return base_id

    def add_record(self, base_id: str, table: str, fields: dict[str, Any]) -> str:
        record_id = self._id("rec")
        with self._lock:
            self.tables[(base_id, table)][record_id] = {
                "id": record_id,
                "createdTime": "2026-12-06T10:00:00.000Z",
                "fields": dict(fields),
            }
        return record_id

    def rate_limit(self) -> None:
        self.queue_response(
            _error(429, "RATE_LIMIT_REACHED", "Rate limit exceeded. Please try again later")
        )

    def _auth(self, request: RecordedRequest) -> Response | None:
        if _bearer_token(request) not in self._tokens:
            return _error(401, "AUTHENTICATION_REQUIRED", "Authentication required")
        return None

    def _table(self, base: str, table: str) -> tuple[str, str] | None:
        for t in self._schema.get(base, []):
            if table in (t["id"], t["name"]):
                return base, t["name"]
        return None

    def _page(self, request: RecordedRequest, items: list[Any], key: str, size: int) -> Response:
        offset = request.query.get("offset") or "0"
        if not offset.isdigit():
            return _error(422, "LIST_RECORDS_ITERATOR_NOT_AVAILABLE", "Invalid offset")
        start = int(offset)
        body: dict[str, Any] = {key: items[start : start + size]}
        if start + size < len(items):
            body["offset"] = str(start + size)
        return Response.json(body)

    def _list_bases(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        with self._lock:
            bases = list(self.bases.values())
        return self._page(request, bases, "bases", 2)  # small pages make paging visible

    def _tables(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        if params["base"] not in self._schema:
            return _error(404, "NOT_FOUND", "Could not find what you are looking for")
        return Response.json({"tables": self._schema[params["base"]]})

    def _resolve(
        self, request: RecordedRequest, params: dict[str, str]
    ) -> tuple[str, str] | Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        key = self._table(params["base"], params["table"])
        if key is None:
            return _error(404, "TABLE_NOT_FOUND", "Could not find table in this base")
        return key

    def _list_records(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        key = self._resolve(request, params)
        if isinstance(key, Response):
            return key
        size = int(request.query.get("pageSize") or 100)
        if not 1 <= size <= 100:
            return _error(422, "INVALID_PAGE_SIZE", "pageSize must be 1 to 100")
        with self._lock:
            records = list(self.tables[key].values())
        formula = request.query.get("filterByFormula")
        if formula:  # the fake understands {Field} = 'value' only
            field, _, value = formula.partition("=")
            name, wanted = field.strip().strip("{}"), value.strip().strip("'\"")
            records = [r for r in records if str(r["fields"].get(name)) == wanted]
        return self._page(request, records, "records", size)

    def _get(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        key = self._resolve(request, params)
        if isinstance(key, Response):
            return key
        with self._lock:
            record = self.tables[key].get(params["record"])
        if record is None:
            return _error(404, "NOT_FOUND", "Could not find what you are looking for")
        return Response.json(record)

    def _known_fields(self, key: tuple[str, str]) -> set[str]:
        for t in self._schema[key[0]]:
            if t["name"] == key[1]:
                return {f["name"] for f in t["fields"]}
        return set()

    def _create(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        key = self._resolve(request, params)
        if isinstance(key, Response):
            return key
        records = request.json().get("records") or []
        if not 1 <= len(records) <= 10:
            return _error(422, "INVALID_RECORDS", "You must provide an array of up to 10 records")
        known = self._known_fields(key)
        for record in records:
            unknown = set(record.get("fields") or {}) - known
            if unknown:
                return _error(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{unknown.pop()}"')
        made = [self.add_record(*key, r["fields"]) for r in records]
        with self._lock:
            return Response.json({"records": [self.tables[key][m] for m in made]})

    def _update(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        key = self._resolve(request, params)
        if isinstance(key, Response):
            return key
        records = request.json().get("records") or []
        with self._lock:
            table = self.tables[key]
            if any(r.get("id") not in table for r in records):
                return _error(404, "NOT_FOUND", "Could not find what you are looking for")
            for r in records:
                table[r["id"]]["fields"].update(r.get("fields") or {})
            return Response.json({"records": [table[r["id"]] for r in records]})
