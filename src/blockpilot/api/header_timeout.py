"""A deadline for reading a request's head (request line and headers).

uvicorn has none: its keep-alive timer only runs *between* requests and stops at the first
byte, so a client that trickles a partial request line or header block holds a connection
(and a slot of the server) unauthenticated for as long as it likes ("slowloris"). This
protocol closes a connection whose request head is not complete within
``BLOCKPILOT_HEADER_TIMEOUT_SECONDS`` of the connection opening, or of the first byte of the
next request on a kept-alive connection. Bodies and responses are not limited here (see
``docs/configuration.md``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEADER_TIMEOUT_SECONDS = 10.0


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request head arrives too slowly."""

    header_timeout_seconds = DEFAULT_HEADER_TIMEOUT_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_deadline()  # a connection that sends nothing at all is held too

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._stop_head_deadline()  # the head is complete: the request is being served
        elif self._head_deadline is None and self.conn.trailing_data[0]:
            # The first bytes of the next request on a kept-alive connection. The deadline
            # is not restarted by later bytes, so trickling does not extend it.
            self._start_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_deadline()
        super().connection_lost(exc)

    def _start_head_deadline(self) -> None:
        self._stop_head_deadline()
        self._head_deadline = self.loop.call_later(
            self.header_timeout_seconds, self._head_timed_out
        )

    def _stop_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.debug("closing a connection whose request head did not arrive in time")
            self.transport.close()


def header_deadline_protocol(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class for uvicorn (``Config(http=...)``) with a head deadline of *seconds*."""
    return type(
        "HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout_seconds": seconds}
    )
