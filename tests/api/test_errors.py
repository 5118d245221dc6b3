"""The one error table, and 4xx (never 500) for every kind of malformed request."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from blockpilot import errors
from blockpilot.api.app import JSON_BODY_LIMIT
from blockpilot.api.errors import ERROR_TABLE, http_error_for
from tests.api.api_helpers import ClientFactory, assert_error

SECRET_DETAIL = "postgresql://admin:hunter2@db.internal/prod"


def all_error_classes() -> list[type[errors.BlockpilotError]]:
    found: list[type[errors.BlockpilotError]] = []
    pending = [errors.BlockpilotError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_class_of_the_tree_has_its_own_row() -> None:
    # The tree is errors.py plus this door's own classes; a class defined elsewhere still
    # gets its nearest ancestor's row (next test), but the tree's must each be decided.
    tree = {"blockpilot.errors", "blockpilot.api.errors"}
    missing = [
        cls.__name__
        for cls in all_error_classes()
        if cls.__module__ in tree and cls not in ERROR_TABLE
    ]
    assert missing == []
    assert all(400 <= row.status < 600 for row in ERROR_TABLE.values())


def test_most_specific_row_wins_and_unknown_subclasses_inherit() -> None:
    class PluginError(errors.WorkspaceQuotaError):
        pass

    assert http_error_for(errors.WorkspaceQuotaError).status == 413
    assert http_error_for(errors.WorkspaceError).status == 400
    assert http_error_for(PluginError).status == 413
    assert http_error_for(errors.ConfigurationError).public_message is not None


@pytest.mark.parametrize(
    "cls", sorted(ERROR_TABLE, key=lambda c: c.__name__), ids=lambda c: c.__name__
)
async def test_each_error_class_is_answered_by_its_row(
    app: FastAPI,
    client_for: ClientFactory,
    cls: type[errors.BlockpilotError],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fail() -> None:
        raise cls(f"it broke: {SECRET_DETAIL}", details={"where": SECRET_DETAIL})

    app.add_api_route("/test-raise", fail)
    response = await client_for().get("/test-raise", headers={"X-Request-Id": "req-42"})
    row = ERROR_TABLE[cls]
    error = assert_error(response, row.status, cls.code)
    if row.public_message is None:
        assert error["message"] == f"it broke: {SECRET_DETAIL}"
        assert error["details"] == {"where": SECRET_DETAIL}
    else:
        assert SECRET_DETAIL not in response.text
        assert "req-42" in str(error["message"])
        assert error["details"] is None
        # The operator's log keeps the detail, with the password in it scrubbed.
        assert any("db.internal/prod" in r.getMessage() for r in caplog.records)
        assert not any("hunter2" in r.getMessage() for r in caplog.records)


async def test_configuration_errors_say_misconfigured_only(
    app: FastAPI, client_for: ClientFactory
) -> None:
    async def fail() -> None:
        raise errors.EncryptionKeyError("key file /srv/secret.key unreadable")

    app.add_api_route("/test-raise", fail)
    error = assert_error(await client_for().get("/test-raise"), 500, "encryption_key_error")
    assert str(error["message"]).startswith(
        "Service misconfigured; see the server log (request id "
    )


async def test_unexpected_exception_is_a_bare_500_logged_with_traceback(
    app: FastAPI, client_for: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async def fail() -> None:
        raise RuntimeError(f"bug near {SECRET_DETAIL}")

    app.add_api_route("/test-raise", fail)
    response = await client_for(raise_app_exceptions=False).get(
        "/test-raise", headers={"X-Request-Id": "req-7"}
    )
    error = assert_error(response, 500, "internal_error")
    assert error["message"] == "Internal error; see the server log (request id req-7)"
    assert SECRET_DETAIL not in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"] == "req-7"
    logged = [
        r
        for r in caplog.records
        if r.levelno == logging.ERROR and getattr(r, "request_id", None) == "req-7"
    ]
    assert logged and (logged[0].exc_info or logged[0].exc_text)


async def test_unknown_routes_and_methods_use_the_same_shape(as_alice: httpx.AsyncClient) -> None:
    assert_error(await as_alice.get("/api/v1/nothing-here"), 404, "not_found")
    response = await as_alice.delete("/api/v1/sessions")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "malformed_body"),
        (b'{"query": NaN}', "application/json", 400, "malformed_body"),
        (b'{"query": Infinity}', "application/json", 400, "malformed_body"),
        (b'{"query": -Infinity}', "application/json", 400, "malformed_body"),
        (b'{"query": 1e999}', "application/json", 400, "malformed_body"),
        (b'{"query": ' + b"9" * 5000 + b"}", "application/json", 400, "malformed_body"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "malformed_body"),
        (b'{"query": "\xff\xfe"}', "application/json", 400, "malformed_body"),
        (b'{"query": "x"} trailing', "application/json", 400, "malformed_body"),
        (b'{"query": "x"}', "text/plain", 415, "unsupported_media_type"),
        (b"query=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b'{"query": "x"}', None, 415, "unsupported_media_type"),
        (b"[1, 2]", "application/json", 422, "invalid_input"),
        (b'"query"', "application/json", 422, "invalid_input"),
        (b"null", "application/json", 422, "invalid_input"),
        (b"42", "application/json; charset=utf-8", 422, "invalid_input"),
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/tools/find_block", "/api/v1/credentials"])
async def test_malformed_bodies_are_clear_4xx(
    as_alice: httpx.AsyncClient,
    path: str,
    content: bytes,
    content_type: str | None,
    status: int,
    code: str,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await as_alice.post(path, content=content, headers=headers)
    assert_error(response, status, code)
    assert (await as_alice.get("/api/v1/sessions")).json() == {"sessions": []}


async def test_json_errors_never_echo_the_body(as_alice: httpx.AsyncClient) -> None:
    body = b'{"provider": "openai", "api_key": "sk-echo-canary-1234567890" oops}'
    response = await as_alice.post(
        "/api/v1/credentials", content=body, headers={"Content-Type": "application/json"}
    )
    error = assert_error(response, 400, "malformed_body")
    assert "canary" not in response.text
    assert "line 1 column" in str(error["message"])


async def test_json_bodies_over_the_limit_are_413(as_alice: httpx.AsyncClient) -> None:
    big = b'{"query": "' + b"x" * JSON_BODY_LIMIT + b'"}'
    response = await as_alice.post(
        "/api/v1/tools/find_block", content=big, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "request_too_large")

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while streaming
        yield b'{"query": "'
        for _ in range(JSON_BODY_LIMIT // 65536 + 1):
            yield b"x" * 65536
        yield b'"}'

    response = await as_alice.post(
        "/api/v1/tools/find_block", content=chunked(), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "request_too_large")
    assert (await as_alice.get("/api/v1/sessions")).json() == {"sessions": []}


async def test_validation_errors_name_the_field_not_the_value(as_alice: httpx.AsyncClient) -> None:
    response = await as_alice.get(
        "/api/v1/executions", params={"limit": "sk-validation-canary-123"}
    )
    error = assert_error(response, 422, "invalid_request")
    assert "canary" not in response.text
    assert error["details"] == {
        "errors": [{"loc": ["query", "limit"], "message": error["details"]["errors"][0]["message"]}]
    }  # type: ignore[index]
    assert "query.limit" in str(error["message"])
