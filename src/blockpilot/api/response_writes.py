"""One socket write for a response's head and the body that follows it.

uvicorn's h11 protocol writes a response's status line and headers, then its body, each
straight to the socket: two ``send`` system calls and, as asyncio sets ``TCP_NODELAY``, two
TCP segments for every small response, each one processed by the network stack and the
client. :class:`CoalescingTransport` holds a response head until the next write (the body,
which uvicorn writes in the same step of the same task when the application sends both at
once, as a JSON answer does) and sends the two as one. A head that nothing follows in that
step (a streamed response, an interim ``100 Continue``) goes out at the event loop's next
turn. The bytes, their order and every other transport operation are unchanged
(docs/performance.md#round-six-issue-17-the-http-layer).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from blockpilot.api.header_timeout import HeaderDeadlineProtocol

_HEAD_START = b"HTTP/1.1 "
_HEAD_END = b"\r\n\r\n"


class CoalescingTransport:
    """A connection's transport that sends a response head together with what follows it.

    Every other operation is the wrapped transport's; those that write or end the
    connection send a held head first.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif data[: len(_HEAD_START)] == _HEAD_START and data[-len(_HEAD_END) :] == _HEAD_END:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Send a held head now (at the latest, the loop's next turn does)."""
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def writelines(self, list_of_data: Any) -> None:
        self.flush()
        self._transport.writelines(list_of_data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self.flush()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingProtocol(HeaderDeadlineProtocol):
    """blockpilot's HTTP protocol: uvicorn's h11 protocol with a deadline for request heads
    (:mod:`blockpilot.api.header_timeout`) whose responses go out through a
    :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        wrapped = CoalescingTransport(transport, self.loop)
        super().connection_made(cast(asyncio.Transport, wrapped))


def server_protocol(header_timeout_seconds: float) -> type[CoalescingProtocol]:
    """The protocol class for uvicorn (``Config(http=...)``), with a head deadline of
    *header_timeout_seconds*."""
    return type(
        "CoalescingProtocol",
        (CoalescingProtocol,),
        {"header_timeout_seconds": header_timeout_seconds},
    )
