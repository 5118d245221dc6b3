"""Request bodies are UTF-8 JSON (RFC 8259): UTF-16 and UTF-32 are refused, not guessed.

Regression: ``json.loads`` on bytes detects UTF-16/UTF-32 from the first bytes and decoded
them, so the API accepted bodies in encodings no other JSON door of the service reads.
"""

from __future__ import annotations

import httpx
import pytest

from blockpilot.api.body import parse_json_object
from blockpilot.api.errors import MalformedBodyError
from blockpilot.strict_json import StrictJSONError, loads_strict
from tests.api.api_helpers import assert_error

DOCUMENT = '{"query": "calculator ü"}'
JSON = {"Content-Type": "application/json"}

NOT_UTF8 = {
    "utf-16 with bom": DOCUMENT.encode("utf-16"),
    "utf-16-le": DOCUMENT.encode("utf-16-le"),
    "utf-16-be": DOCUMENT.encode("utf-16-be"),
    "utf-32 with bom": DOCUMENT.encode("utf-32"),
    "utf-32-le": DOCUMENT.encode("utf-32-le"),
    "utf-32-be": DOCUMENT.encode("utf-32-be"),
    "latin-1": DOCUMENT.encode("latin-1"),
}


@pytest.mark.parametrize("name", sorted(NOT_UTF8))
def test_utf16_and_utf32_json_is_refused_not_guessed(name: str) -> None:
    with pytest.raises(StrictJSONError, match="send JSON encoded as UTF-8"):
        loads_strict(NOT_UTF8[name])
    with pytest.raises(MalformedBodyError, match="UTF-8"):
        parse_json_object(NOT_UTF8[name], "application/json")


@pytest.mark.parametrize("name", sorted(NOT_UTF8))
async def test_http_bodies_not_in_utf8_are_malformed_body_400(
    as_alice: httpx.AsyncClient, name: str
) -> None:
    response = await as_alice.post("/api/v1/tools/find_block", content=NOT_UTF8[name], headers=JSON)
    error = assert_error(response, 400, "malformed_body")
    assert "send JSON encoded as UTF-8" in str(error["message"])
    assert "calculator" not in response.text  # the body is never echoed


def test_a_utf8_byte_order_mark_is_stripped() -> None:
    assert loads_strict(b"\xef\xbb\xbf" + DOCUMENT.encode()) == {"query": "calculator ü"}
    assert parse_json_object(b"\xef\xbb\xbf" + DOCUMENT.encode(), "application/json") == {
        "query": "calculator ü"
    }


async def test_utf8_bodies_with_and_without_bom_are_taken(as_alice: httpx.AsyncClient) -> None:
    for body in (DOCUMENT.encode(), b"\xef\xbb\xbf" + DOCUMENT.encode()):
        response = await as_alice.post("/api/v1/tools/find_block", content=body, headers=JSON)
        assert response.status_code == 200, response.text


def test_escaped_nul_is_still_valid_utf8_json() -> None:
    assert loads_strict(b'{"a": "x\\u0000y"}') == {"a": "x\x00y"}
