"""Helpers shared by the API tests."""

from __future__ import annotations

from collections.abc import Callable

import httpx

ClientFactory = Callable[..., httpx.AsyncClient]


def assert_error(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, object]:
    """The response is an error in the API's one shape; returns its ``error`` object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


async def raw_asgi_request(
    app: object,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, object]]:
    """Send *path* as given (HTTP clients normalise ``..`` away); returns status and JSON."""
    import json

    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": "",
        "query_string": b"",
        "headers": raw_headers,
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app(scope, receive, send)  # type: ignore[operator]
    status = int(sent[0]["status"])  # type: ignore[call-overload]
    payload = b"".join(m.get("body", b"") for m in sent[1:])  # type: ignore[misc]
    return status, json.loads(payload) if payload else {}
