"""Strict JSON request bodies: clear 4xx errors for everything that is not a JSON object.

FastAPI's own body parsing accepts ``NaN``/``Infinity`` and turns some failures into a bare
400; routes here read their bodies with :func:`read_json_object` instead and declare the
body in OpenAPI with :func:`json_body`.

Bodies are UTF-8 (RFC 8259 §8.1; a ``charset`` parameter is not read, as that RFC defines
none). UTF-16, UTF-32 or any other bytes that are not UTF-8 are ``malformed_body`` (400)
with a message telling the client to send UTF-8 JSON; a leading UTF-8 byte order mark is
stripped (see :func:`blockpilot.strict_json.decode_utf8`).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from blockpilot.errors import (
    InvalidInputError,
    MalformedBodyError,
    StrictJSONError,
    UnsupportedMediaTypeError,
)
from blockpilot.strict_json import json_type_name, loads_strict


def is_json_media_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def parse_json_object(
    body: bytes, content_type: str | None, *, allow_empty: bool = False
) -> dict[str, Any]:
    """The body as a JSON object, or a :class:`~blockpilot.errors.InvalidInputError` subclass.

    Args:
        body: The raw request body.
        content_type: The request's ``Content-Type`` header.
        allow_empty: Read an empty body as ``{}`` (whatever its content type).

    Raises:
        MalformedBodyError: not JSON, or not UTF-8 (a UTF-8 byte order mark is stripped).
        UnsupportedMediaTypeError: not declared as JSON.
        InvalidInputError: JSON, but not an object.
    """
    if not body.strip():
        if allow_empty:
            return {}
        raise MalformedBodyError("Request body is empty; send a JSON object")
    if not is_json_media_type(content_type):
        raise UnsupportedMediaTypeError(
            "Send the body as JSON with the header 'Content-Type: application/json'"
        )
    try:
        value = loads_strict(body)
    except StrictJSONError as exc:
        raise MalformedBodyError(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"Request body must be a JSON object, not {json_type_name(value)}")
    return value


async def read_json_object(request: Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """Read and parse the request body with :func:`parse_json_object`."""
    return parse_json_object(
        await request.body(), request.headers.get("content-type"), allow_empty=allow_empty
    )


def json_body(
    schema: dict[str, Any], *, required: bool = True, description: str = ""
) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON request body with *schema*."""
    body: dict[str, Any] = {
        "required": required,
        "content": {"application/json": {"schema": schema}},
    }
    if description:
        body["description"] = description
    return {"requestBody": body}
