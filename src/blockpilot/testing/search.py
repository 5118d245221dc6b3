"""Fake web search and weather APIs: Exa, Jina Search and OpenWeatherMap.

Each speaks its provider's documented shape: Exa ``POST /search`` with ``x-api-key``
(401 ``{"error": …}``); Jina ``GET s.jina.ai/?q=`` with ``Authorization: Bearer`` and
``Accept: application/json`` (``{"code": 200, "data": [...]}``; 401 ``{"code": 401,
"name": "AuthenticationRequiredError", "message": …}``); OpenWeatherMap
``GET /data/2.5/weather?q=&appid=&units=`` (401/404 ``{"cod": …, "message": …}``). Each
has ``rate_limit()`` for the provider's 429.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._http import LOCALHOST, LocalHTTPServer, RecordedRequest, Response, _bearer_token

_PAGES = [
    {
        "title": "Python asyncio documentation",
        "url": "https://docs.python.org/3/library/asyncio.html",
        "publishedDate": "2025-10-01T00:00:00.000Z",
        "author": "PSF",
        "text": "asyncio is a library to write concurrent code using the async/await syntax.",
    },
    {
        "title": "Real Python: Async IO in Python",
        "url": "https://realpython.com/async-io-python/",
        "publishedDate": "2024-05-01T00:00:00.000Z",
        "author": "Brad",
        "text": "A walkthrough of async IO in Python.",
    },
]


class _KeyedServer(LocalHTTPServer):
    def __init__(self, keys: Iterable[str] | None = None, *, host: str = LOCALHOST) -> None:
        super().__init__(host=host)
        self.keys = set(keys or ())
        self.pages: list[dict[str, Any]] = [dict(p) for p in _PAGES]


class FakeExa(_KeyedServer):
    """Exa's search API; ``base_url`` is the equivalent of ``https://api.exa.ai``."""

    def __init__(self, keys: Iterable[str] | None = None, *, host: str = LOCALHOST) -> None:
        super().__init__(keys, host=host)
        self.add_route("POST", "/search", self._search)

    def rate_limit(self) -> None:
        self.queue_response(
            Response.json({"error": "Rate limit exceeded"}, 429, {"Retry-After": "3"})
        )

    def _search(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        if request.header("x-api-key") not in self.keys:
            return Response.json({"requestId": "r1", "error": "Invalid API key"}, 401)
        body = request.json()
        if not body.get("query"):
            return Response.json({"requestId": "r1", "error": "query is required"}, 400)
        pages = [
            p for p in self.pages
            if not body.get("includeDomains") or any(d in p["url"] for d in body["includeDomains"])
        ]  # fmt: skip
        results = [
            {"id": p["url"], "score": 0.9, **p} for p in pages[: int(body.get("numResults") or 10)]
        ]
        if "contents" not in body:
            for r in results:
                r.pop("text")
        return Response.json(
            {"requestId": "r1", "resolvedSearchType": "neural", "results": results}
        )


class FakeJina(_KeyedServer):
    """Jina Search (``s.jina.ai``); ``base_url`` is the equivalent of ``https://s.jina.ai``."""

    def __init__(self, keys: Iterable[str] | None = None, *, host: str = LOCALHOST) -> None:
        super().__init__(keys, host=host)
        self.add_route("GET", "/", self._search)

    def rate_limit(self) -> None:
        body = {"code": 429, "name": "RateLimitTriggeredError", "message": "Per-IP rate limit"}
        self.queue_response(Response.json(body, 429, {"Retry-After": "9"}))

    def _search(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        if _bearer_token(request) not in self.keys:
            body = {
                "code": 401,
                "name": "AuthenticationRequiredError",
                "message": "Invalid API key",
            }
            return Response.json(body, 401)
        if not request.query.get("q"):
            body = {"code": 400, "name": "ParamValidationError", "message": "q is required"}
            return Response.json(body, 400)
        if "application/json" not in (request.header("accept") or ""):
            return Response.text("\n".join(f"[{p['title']}]({p['url']})" for p in self.pages))
        data = [
            {
                "title": p["title"],
                "url": p["url"],
                "description": p["text"][:60],
                "content": p["text"],
                "usage": {"tokens": 100},
            }
            for p in self.pages
        ]
        return Response.json({"code": 200, "status": 20000, "data": data})


class FakeOpenWeatherMap(_KeyedServer):
    """OpenWeatherMap's current weather; ``base_url`` is the equivalent of
    ``https://api.openweathermap.org``. Cities come from :attr:`cities` (name → °C)."""

    def __init__(self, keys: Iterable[str] | None = None, *, host: str = LOCALHOST) -> None:
        super().__init__(keys, host=host)
        self.cities: dict[str, float] = {"paris": 18.5, "tokyo": 25.0}
        self.add_route("GET", "/data/2.5/weather", self._weather)

    def rate_limit(self) -> None:
        body = {
            "cod": 429,
            "message": "Your account is temporary blocked due to exceeding of requests limitation",
        }
        self.queue_response(Response.json(body, 429))

    def _weather(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        if request.query.get("appid") not in self.keys:
            message = (
                "Invalid API key. Please see https://openweathermap.org/faq#error401 for more info."
            )
            return Response.json({"cod": 401, "message": message}, 401)
        city = (request.query.get("q") or "").split(",")[0].strip().lower()
        if city not in self.cities:
            return Response.json({"cod": "404", "message": "city not found"}, 404)
        celsius = self.cities[city]
        temp = celsius if request.query.get("units") == "metric" else celsius * 9 / 5 + 32
        return Response.json(
            {
                "coord": {"lon": 2.35, "lat": 48.85},
                "weather": [
                    {"id": 500, "main": "Rain", "description": "light rain", "icon": "10d"}
                ],
                "main": {"temp": temp, "feels_like": temp, "pressure": 1012, "humidity": 81},
                "wind": {"speed": 4.1, "deg": 250},
                "name": city.title(),
                "cod": 200,
            }
        )
