"""A fake HubSpot CRM v3 objects API for contacts and companies: search (``after``
cursor), read (by id or an ``idProperty``), create, with HubSpot's error bodies."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from ._http import LOCALHOST, RecordedRequest, Response
from ._provider import TokenAPIServer, page_of

_CATEGORIES = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    404: "OBJECT_NOT_FOUND",
    409: "CONFLICT",
    429: "RATE_LIMITS",
}
_SEARCHED = {"contacts": ("email", "firstname", "lastname", "phone", "company"),
             "companies": ("name", "domain")}  # fmt: skip
_UNIQUE = {"contacts": "email", "companies": "domain"}


class FakeHubSpot(TokenAPIServer):
    """``POST /crm/v3/objects/{contacts|companies}/search``, ``GET …/{id}`` and
    ``POST /crm/v3/objects/{contacts|companies}`` with ``Authorization: Bearer <token>``."""

    def __init__(self, tokens: Iterable[str] | None = None, *, host: str = LOCALHOST) -> None:
        super().__init__(tokens=tokens, host=host)
        self.objects: dict[str, dict[str, dict[str, Any]]] = {"contacts": {}, "companies": {}}
        self.add_route("POST", "/crm/v3/objects/{type}/search", self._search)
        self.add_route("GET", "/crm/v3/objects/{type}/{id}", self._get)
        self.add_route("POST", "/crm/v3/objects/{type}", self._create)

    def add_object(self, object_type: str, **properties: Any) -> str:
        with self._lock:
            object_id = str(1000 + sum(len(v) for v in self.objects.values()))
            self.objects[object_type][object_id] = {
                "id": object_id,
                "properties": {k: None if v is None else str(v) for k, v in properties.items()},
                "createdAt": "2026-12-01T09:00:00.000Z",
                "updatedAt": "2026-12-01T09:00:00.000Z",
                "archived": False,
            }
        return object_id

    def error_response(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        body = {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": _CATEGORIES.get(status, "INTERNAL_ERROR"),
        }
        if status == 429:
            body |= {"errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}
        return Response.json(body, status, headers=headers)

    def _check(
        self, request: RecordedRequest, object_type: str
    ) -> dict[str, dict[str, Any]] | Response:
        if self.authenticate(request) is not None:
            return self.error_response(
                401, "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at https://developers.hubspot.com/",
            )  # fmt: skip
        store = self.objects.get(object_type)
        if store is None:
            return self.error_response(400, f"Unable to infer object type from: {object_type}")
        return store

    @staticmethod
    def _view(obj: dict[str, Any], wanted: Iterable[str]) -> dict[str, Any]:
        names = set(wanted) | {"hs_object_id"}
        props = {k: v for k, v in obj["properties"].items() if k in names}
        return {**obj, "properties": {**props, "hs_object_id": obj["id"]}}

    def _search(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        store = self._check(request, params["type"])
        if isinstance(store, Response):
            return store
        body = request.json() or {}
        limit = int(body.get("limit") or 10)
        if limit > 200:
            return self.error_response(400, "limit must be at most 200")
        query = str(body.get("query") or "").lower()
        searched = _SEARCHED[params["type"]]
        with self._lock:
            found = [
                o
                for o in store.values()
                if not query
                or any(query in str(o["properties"].get(p) or "").lower() for p in searched)
            ]
        chunk, nxt = page_of(found, int(body.get("after") or 0), limit)
        answer: dict[str, Any] = {
            "total": len(found),
            "results": [self._view(o, body.get("properties") or ()) for o in chunk],
        }
        if nxt is not None:
            answer["paging"] = {"next": {"after": str(nxt)}}
        return Response.json(answer)

    def _get(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        store = self._check(request, params["type"])
        if isinstance(store, Response):
            return store
        id_property = request.query.get("idProperty")
        key = unquote(params["id"])
        with self._lock:
            if id_property:
                obj = next(
                    (o for o in store.values() if o["properties"].get(id_property) == key), None
                )
            else:
                obj = store.get(key)
        if obj is None:
            return Response(404, b"")  # HubSpot answers a missing object with an empty 404
        wanted = (request.query.get("properties") or "").split(",")
        return Response.json(self._view(obj, wanted))

    def _create(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        store = self._check(request, params["type"])
        if isinstance(store, Response):
            return store
        properties = (request.json() or {}).get("properties")
        if not isinstance(properties, dict) or not properties:
            return self.error_response(400, "Invalid input JSON: no properties")
        unique = _UNIQUE[params["type"]]
        with self._lock:
            clash = next(
                (
                    o["id"]
                    for o in store.values()
                    if properties.get(unique)
                    and o["properties"].get(unique) == properties.get(unique)
                ),
                None,
            )
        if clash is not None:
            return self.error_response(409, f"Contact already exists. Existing ID: {clash}")
        object_id = self.add_object(params["type"], **properties)
        with self._lock:
            return Response.json(self._view(store[object_id], properties), 201)
