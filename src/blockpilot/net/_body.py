"""Read a response body under a byte cap that applies to the decoded bytes."""

from __future__ import annotations

import zlib
from typing import Protocol

import httpx

from blockpilot.errors import NetworkError, ResponseTooLargeError

# The only encodings we ask for; each is decoded with a bounded output size.
ACCEPT_ENCODING = "gzip, deflate"


class _Decoder(Protocol):
    def decode(self, data: bytes, limit: int) -> bytes: ...

    def flush(self) -> bytes: ...


class _Identity:
    def decode(self, data: bytes, limit: int) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


class _Inflate:
    """zlib-based decoder that never produces more than ``limit + 1`` bytes per call."""

    def __init__(self, wbits: int, *, raw_fallback: bool = False) -> None:
        self._obj = zlib.decompressobj(wbits)
        # Some servers send "deflate" as a raw stream without the zlib header.
        self._raw_fallback = raw_fallback

    def decode(self, data: bytes, limit: int) -> bytes:
        out = bytearray()
        pending = data
        while pending and len(out) <= limit:
            try:
                out += self._obj.decompress(pending, limit + 1 - len(out))
            except zlib.error:
                if not self._raw_fallback:
                    raise
                self._raw_fallback = False
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._raw_fallback = False
            if self._obj.eof:
                break
            pending = self._obj.unconsumed_tail
        return bytes(out)

    def flush(self) -> bytes:
        return self._obj.flush()


def _decoder_for(content_encoding: str | None) -> _Decoder | None:
    """Pick a decoder, or ``None`` when the body is kept as received."""
    codings = [
        token.strip().lower()
        for token in (content_encoding or "").split(",")
        if token.strip() and token.strip().lower() != "identity"
    ]
    if not codings:
        return _Identity()
    if codings in (["gzip"], ["x-gzip"]):
        return _Inflate(zlib.MAX_WBITS | 16)
    if codings == ["deflate"]:
        return _Inflate(zlib.MAX_WBITS, raw_fallback=True)
    return None


def _too_large(host: str, limit: int) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"Response from {host} is larger than the limit of {limit} bytes.",
        details={"host": host, "limit": limit},
    )


async def read_body(response: httpx.Response, *, host: str, limit: int, head: bool) -> bytes:
    """Stream *response*'s body, decoding it, and stop as soon as it exceeds *limit*.

    Unknown or stacked content codings are returned undecoded (the header says so).

    Raises:
        ResponseTooLargeError: Content-Length or the decoded body exceeds *limit*.
        NetworkError: The compressed body is corrupt.
    """
    declared = response.headers.get("content-length", "")
    if not head and declared.isdigit() and int(declared) > limit:
        raise _too_large(host, limit)
    if response.is_stream_consumed:
        # Mock transports hand over responses whose body httpx already read and decoded.
        if len(response.content) > limit:
            raise _too_large(host, limit)
        return response.content
    decoder = _decoder_for(response.headers.get("content-encoding")) or _Identity()
    body = bytearray()
    try:
        async for chunk in response.aiter_raw():
            body += decoder.decode(chunk, limit - len(body))
            if len(body) > limit:
                raise _too_large(host, limit)
        body += decoder.flush()
    except zlib.error:
        raise NetworkError(
            f"Response from {host} has a corrupt compressed body.", details={"host": host}
        ) from None
    if len(body) > limit:
        raise _too_large(host, limit)
    return bytes(body)
