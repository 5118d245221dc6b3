"""A fake Discord bot API (v10): send messages and embeds, read a channel.

As Discord does it: ``Authorization: Bot <token>``; errors are ``{"message": …, "code": …}``
(401 ``{"message": "401: Unauthorized", "code": 0}``, 404 ``Unknown Channel`` code 10003,
missing access 50001); 429 carries ``retry_after`` in the body and ``Retry-After``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from typing import Any

from ._http import LOCALHOST, LocalHTTPServer, RecordedRequest, Response


class FakeDiscord(LocalHTTPServer):
    """``base_url`` is the equivalent of ``https://discord.com/api/v10``.

    ``tokens`` are the accepted bot tokens; channels come from :meth:`add_channel`; sent
    messages are kept in :attr:`messages` (full request bodies, with ``channel_id``).
    """

    def __init__(self, tokens: Iterable[str] | None = None, *, host: str = LOCALHOST) -> None:
        super().__init__(host=host)
        self._tokens = set(tokens or ())
        self._channels: dict[str, dict[str, Any]] = {}
        self.messages: list[dict[str, Any]] = []
        self._ids = itertools.count(1_100_000_000_000_000_000)
        self._ids_lock = threading.Lock()
        self.add_route("GET", "/api/v10/channels/{channel_id}", self._channel)
        self.add_route("POST", "/api/v10/channels/{channel_id}/messages", self._send)

    @property
    def base_url(self) -> str:
        return self.origin + "/api/v10"

    def add_channel(
        self, channel_id: str, name: str, *, guild_id: str = "900000000000000001", topic: str = ""
    ) -> None:
        with self._lock:
            self._channels[channel_id] = {
                "id": channel_id,
                "type": 0,
                "guild_id": guild_id,
                "name": name,
                "topic": topic,
                "position": 0,
                "nsfw": False,
                "last_message_id": None,
            }

    def rate_limit(self, seconds: float = 1.5) -> None:
        body = {"message": "You are being rate limited.", "retry_after": seconds, "global": False}
        self.queue_response(Response.json(body, 429))

    def _auth(self, request: RecordedRequest) -> Response | None:
        value = request.header("authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme != "Bot" or token not in self._tokens:
            return Response.json({"message": "401: Unauthorized", "code": 0}, 401)
        return None

    def _find(self, channel_id: str) -> dict[str, Any] | None:
        with self._lock:
            channel = self._channels.get(channel_id)
            return dict(channel) if channel else None

    def _channel(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        channel = self._find(params["channel_id"])
        if channel is None:
            return Response.json({"message": "Unknown Channel", "code": 10003}, 404)
        return Response.json(channel)

    def _send(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        channel = self._find(params["channel_id"])
        if channel is None:
            return Response.json({"message": "Unknown Channel", "code": 10003}, 404)
        body = request.json()
        content = body.get("content") or ""
        if not content and not body.get("embeds"):
            return Response.json({"message": "Cannot send an empty message", "code": 50006}, 400)
        if len(content) > 2000:
            return Response.json(
                {
                    "message": "Invalid Form Body",
                    "code": 50035,
                    "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}},
                },
                400,
            )
        with self._ids_lock:
            message_id = str(next(self._ids))
        message = {
            "id": message_id,
            "channel_id": channel["id"],
            "type": 0,
            "content": content,
            "embeds": body.get("embeds") or [],
            "author": {"id": "1", "username": "blockpilot-bot", "bot": True},
            "timestamp": "2026-01-01T00:00:00.000000+00:00",
        }
        with self._lock:
            self.messages.append({"channel_id": channel["id"], **body})
        return Response.json(message)
