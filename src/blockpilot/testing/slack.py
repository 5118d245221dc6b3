"""A fake Slack Web API: chat.postMessage, conversations.list and conversations.history.

As Slack does it: ``Authorization: Bearer xoxb-…``; failures are HTTP 200 with
``{"ok": false, "error": "…"}`` (``invalid_auth``, ``channel_not_found``, ``missing_scope``
with ``needed``); lists page with ``cursor`` and ``response_metadata.next_cursor``;
:meth:`FakeSlack.rate_limit` makes the next request a 429 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from ._http import LOCALHOST, LocalHTTPServer, RecordedRequest, Response, _bearer_token


def encode_cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        return int(base64.b64decode(cursor).decode().partition(":")[2])
    except (ValueError, UnicodeDecodeError):
        return -1


class FakeSlack(LocalHTTPServer):
    """Slack's Web API under ``/api``; ``base_url`` is the equivalent of
    ``https://slack.com/api``.

    ``tokens`` maps each accepted token to its scopes. Channels come from
    :meth:`add_channel`; posted messages are kept in :attr:`posted` and appear in the
    channel's history (newest first).
    """

    def __init__(
        self, tokens: Mapping[str, Iterable[str]] | None = None, *, host: str = LOCALHOST
    ) -> None:
        super().__init__(host=host)
        self._tokens = {t: set(s) for t, s in (tokens or {}).items()}
        self._channels: dict[str, dict[str, Any]] = {}
        self._history: dict[str, list[dict[str, Any]]] = {}
        self.posted: list[dict[str, Any]] = []
        self._clock = 1_700_000_000
        self._clock_lock = threading.Lock()
        self.add_route("POST", "/api/chat.postMessage", self._post_message)
        self.add_route("GET", "/api/conversations.list", self._list)
        self.add_route("GET", "/api/conversations.history", self._history_route)

    @property
    def base_url(self) -> str:
        return self.origin + "/api"

    def add_channel(
        self, channel_id: str, name: str, *, private: bool = False, topic: str = ""
    ) -> None:
        with self._lock:
            self._channels[channel_id] = {
                "id": channel_id,
                "name": name,
                "is_channel": True,
                "is_private": private,
                "is_archived": False,
                "topic": {"value": topic, "creator": "U0", "last_set": 0},
                "purpose": {"value": "", "creator": "", "last_set": 0},
                "num_members": 3,
            }
            self._history.setdefault(channel_id, [])

    def add_message(self, channel_id: str, text: str, user: str = "U01") -> str:
        with self._clock_lock:
            self._clock += 1
            ts = f"{self._clock}.000100"
        with self._lock:
            self._history[channel_id].insert(
                0, {"type": "message", "user": user, "text": text, "ts": ts}
            )
        return ts

    def rate_limit(self, seconds: int = 30) -> None:
        """Answer the next request with Slack's 429 and ``Retry-After``."""
        self.queue_response(
            Response.json({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": str(seconds)})
        )

    def _auth(self, request: RecordedRequest, scope: str) -> Response | None:
        token = _bearer_token(request)
        with self._lock:
            scopes = self._tokens.get(token or "")
        if scopes is None:
            return Response.json({"ok": False, "error": "invalid_auth"})
        if scope not in scopes:
            return Response.json(
                {
                    "ok": False,
                    "error": "missing_scope",
                    "needed": scope,
                    "provided": ",".join(sorted(scopes)),
                }
            )
        return None

    def _channel(self, channel: str) -> str | None:
        with self._lock:
            if channel in self._channels:
                return channel
            name = channel.lstrip("#")
            for cid, info in self._channels.items():
                if info["name"] == name:
                    return cid
        return None

    def _post_message(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        refused = self._auth(request, "chat:write")
        if refused is not None:
            return refused
        try:
            body = request.json()
        except ValueError:
            return Response.json({"ok": False, "error": "invalid_json"})
        channel = self._channel(str(body.get("channel") or ""))
        if channel is None:
            return Response.json({"ok": False, "error": "channel_not_found"})
        if not body.get("text"):
            return Response.json({"ok": False, "error": "no_text"})
        ts = self.add_message(channel, body["text"], user="UBOT")
        with self._lock:
            self.posted.append({"channel": channel, **body})
        message = {"type": "message", "user": "UBOT", "text": body["text"], "ts": ts}
        return Response.json({"ok": True, "channel": channel, "ts": ts, "message": message})

    def _page(self, request: RecordedRequest, items: list[dict[str, Any]], key: str) -> Response:
        start = decode_cursor(request.query["cursor"]) if request.query.get("cursor") else 0
        if start < 0:
            return Response.json({"ok": False, "error": "invalid_cursor"})
        limit = max(1, min(int(request.query.get("limit") or 100), 1000))
        page = items[start : start + limit]
        more = start + limit < len(items)
        return Response.json(
            {
                "ok": True,
                key: page,
                "has_more": more,
                "response_metadata": {"next_cursor": encode_cursor(start + limit) if more else ""},
            }
        )

    def _list(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        refused = self._auth(request, "channels:read")
        if refused is not None:
            return refused
        types = set((request.query.get("types") or "public_channel").split(","))
        with self._lock:
            channels = [
                dict(c)
                for c in self._channels.values()
                if ("private_channel" if c["is_private"] else "public_channel") in types
            ]
        return self._page(request, channels, "channels")

    def _history_route(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        refused = self._auth(request, "channels:history")
        if refused is not None:
            return refused
        channel = self._channel(request.query.get("channel", ""))
        if channel is None:
            return Response.json({"ok": False, "error": "channel_not_found"})
        with self._lock:
            messages = [dict(m) for m in self._history[channel]]
        oldest = request.query.get("oldest")
        if oldest:
            messages = [m for m in messages if float(m["ts"]) > float(oldest)]
        return self._page(request, messages, "messages")
