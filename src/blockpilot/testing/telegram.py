"""A fake Telegram Bot API: sendMessage (with replies) and editMessageText.

As Telegram does it: the token is in the path (``/bot<token>/<method>``); answers are
``{"ok": true, "result": …}`` or ``{"ok": false, "error_code": …, "description": …}``
(401 ``Unauthorized``, 400 ``Bad Request: chat not found``, 429 with
``parameters.retry_after``).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from typing import Any

from ._http import LOCALHOST, LocalHTTPServer, RecordedRequest, Response


def _error(code: int, description: str, **extra: Any) -> Response:
    return Response.json(
        {"ok": False, "error_code": code, "description": description, **extra}, code
    )


class FakeTelegram(LocalHTTPServer):
    """``base_url`` is the equivalent of ``https://api.telegram.org``.

    ``tokens`` are the accepted bot tokens; chats come from :meth:`add_chat`; messages
    are kept in :attr:`messages` by ``(chat_id, message_id)``.
    """

    def __init__(self, tokens: Iterable[str] | None = None, *, host: str = LOCALHOST) -> None:
        super().__init__(host=host)
        self._tokens = set(tokens or ())
        self._chats: dict[str, dict[str, Any]] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._ids_lock = threading.Lock()
        self.add_route("POST", "/bot{token}/sendMessage", self._send)
        self.add_route("POST", "/bot{token}/editMessageText", self._edit)

    def add_chat(self, chat_id: int, *, username: str = "", title: str = "chat") -> None:
        with self._lock:
            chat = {"id": chat_id, "type": "group" if chat_id < 0 else "private", "title": title}
            self._chats[str(chat_id)] = chat
            if username:
                self._chats["@" + username] = chat

    def rate_limit(self, seconds: int = 5) -> None:
        self.queue_response(
            _error(
                429,
                f"Too Many Requests: retry after {seconds}",
                parameters={"retry_after": seconds},
            )
        )

    def _start(
        self, request: RecordedRequest, params: dict[str, str]
    ) -> tuple[dict[str, Any], dict[str, Any]] | Response:
        if params["token"] not in self._tokens:
            return _error(401, "Unauthorized")
        body = request.json()
        with self._lock:
            chat = self._chats.get(str(body.get("chat_id")))
        if chat is None:
            return _error(400, "Bad Request: chat not found")
        if not body.get("text"):
            return _error(400, "Bad Request: message text is empty")
        return body, chat

    def _send(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        started = self._start(request, params)
        if isinstance(started, Response):
            return started
        body, chat = started
        reply_to = (body.get("reply_parameters") or {}).get("message_id")
        if reply_to is not None and (chat["id"], reply_to) not in self.messages:
            return _error(400, "Bad Request: message to be replied not found")
        with self._ids_lock:
            message_id = next(self._ids)
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": {"id": 1, "is_bot": True, "first_name": "bot"},
            "chat": chat,
            "date": 1_700_000_000,
            "text": body["text"],
        }
        if reply_to is not None:
            message["reply_to_message"] = dict(self.messages[(chat["id"], reply_to)])
        with self._lock:
            self.messages[(chat["id"], message_id)] = message
        return Response.json({"ok": True, "result": message})

    def _edit(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        started = self._start(request, params)
        if isinstance(started, Response):
            return started
        body, chat = started
        message_id = body.get("message_id")
        key = (chat["id"], message_id if isinstance(message_id, int) else -1)
        with self._lock:
            message = self.messages.get(key)
            if message is None:
                return _error(400, "Bad Request: message to edit not found")
            if message["text"] == body["text"]:
                return _error(400, "Bad Request: message is not modified")
            message = dict(message, text=body["text"], edit_date=1_700_000_100)
            self.messages[key] = message
        return Response.json({"ok": True, "result": message})
