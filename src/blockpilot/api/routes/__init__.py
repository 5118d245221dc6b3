"""The API's routers, one per resource; handlers translate HTTP to Pilot calls and back."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from blockpilot.api.schemas import ErrorBody

API_PREFIX = "/api/v1"


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error statuses, all with the :class:`ErrorBody` shape."""
    return {
        status: {"model": ErrorBody, "description": HTTPStatus(status).phrase}
        for status in statuses
    }
