"""Fake OpenAI- and Anthropic-compatible chat APIs with scripted replies."""

from __future__ import annotations

import json as jsonlib
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._http import (
    LOCALHOST,
    LocalHTTPServer,
    RecordedRequest,
    Response,
    _bearer_token,
)


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def _count_tokens(text: str) -> int:
    return max(1, len(text.split())) if text else 0


# --------------------------------------------------------------------------------------
# LLM providers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ScriptedReply:
    content: str | None
    tool_calls: tuple[tuple[str, str, Any], ...]  # (call id, name, arguments)


def _parse_script_item(item: str | Mapping[str, Any]) -> _ScriptedReply:
    if isinstance(item, str):
        return _ScriptedReply(item, ())
    if not isinstance(item, Mapping):
        raise TypeError(f"scripted reply must be a str or a mapping, not {type(item).__name__}")
    calls = []
    for call in item.get("tool_calls", ()):
        if "name" not in call:
            raise ValueError(f"scripted tool call needs a 'name': {call!r}")
        call_id = str(call.get("id") or _new_id("call_"))
        calls.append((call_id, str(call["name"]), call.get("arguments", {})))
    content = item.get("content")
    if content is None and not calls:
        raise ValueError(f"scripted reply needs 'content' or 'tool_calls': {item!r}")
    return _ScriptedReply(None if content is None else str(content), tuple(calls))


def _text_of(content: Any) -> str:
    """Text of a chat message ``content`` that is a string or a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping):
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif "content" in part:  # e.g. Anthropic tool_result blocks
                    texts.append(_text_of(part["content"]))
        return "".join(texts)
    return str(content)


class _ScriptedLLM(LocalHTTPServer):
    """Shared key checking and reply scripting for the LLM fakes."""

    def __init__(self, api_keys: Iterable[str] | None = None, *, host: str = LOCALHOST) -> None:
        super().__init__(host=host)
        self.api_keys: set[str] = set(api_keys or ())
        self._script: deque[_ScriptedReply] = deque()

    def allow_key(self, key: str) -> None:
        """Accept ``key`` from now on (note: an empty ``api_keys`` accepts any key)."""
        with self._lock:
            self.api_keys.add(key)

    def _key_ok(self, key: str | None) -> bool:
        if not key:
            return False
        with self._lock:
            return not self.api_keys or key in self.api_keys

    def script(self, responses: Iterable[str | Mapping[str, Any]]) -> None:
        """Append scripted replies, consumed one per request; then replies echo again.

        Each item is the assistant text, or a mapping
        ``{"tool_calls": [{"name": ..., "arguments": {...}}], "content": optional}``.
        """
        parsed = [_parse_script_item(item) for item in responses]
        with self._lock:
            self._script.extend(parsed)

    @property
    def pending_script(self) -> int:
        """Number of scripted replies not yet consumed."""
        with self._lock:
            return len(self._script)

    def reset(self) -> None:
        """Also drops unconsumed scripted replies."""
        with self._lock:
            super().reset()
            self._script.clear()

    def _next_reply(self, last_user_text: str) -> _ScriptedReply:
        with self._lock:
            if self._script:
                return self._script.popleft()
        return _ScriptedReply("echo: " + last_user_text, ())


def _last_user_text(messages: Any) -> str:
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, Mapping) and message.get("role") == "user":
                return _text_of(message.get("content"))
    return ""


def _prompt_tokens(messages: Any) -> int:
    if not isinstance(messages, list):
        return 0
    return sum(
        _count_tokens(_text_of(m.get("content"))) for m in messages if isinstance(m, Mapping)
    )


class FakeOpenAI(_ScriptedLLM):
    """OpenAI-compatible Chat Completions API (``POST /v1/chat/completions``).

    ``base_url`` includes ``/v1`` (as the OpenAI SDK expects); ``/chat/completions``
    without the prefix is accepted too, as is ``GET /v1/models``.  Keys come as
    ``Authorization: Bearer <key>`` and are checked against ``api_keys`` (empty set:
    any key).  A wrong key yields the OpenAI 401 error JSON whose message *echoes the
    full key* -- deliberately hostile, so that secret scrubbing can be tested.
    Replies echo the last user message (``"echo: <text>"``) unless :meth:`script` was
    used.
    """

    def __init__(self, api_keys: Iterable[str] | None = None, *, host: str = LOCALHOST) -> None:
        super().__init__(api_keys, host=host)
        for prefix in ("/v1", ""):
            self.add_route("POST", prefix + "/chat/completions", self._chat_completions)
            self.add_route("GET", prefix + "/models", self._models)

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"

    @staticmethod
    def _error(
        message: str,
        status: int,
        code: str | None = None,
        param: str | None = None,
        type_: str = "invalid_request_error",
    ) -> Response:
        return Response.json(
            {"error": {"message": message, "type": type_, "param": param, "code": code}},
            status=status,
        )

    def _auth_error(self, request: RecordedRequest) -> Response | None:
        key = _bearer_token(request)
        if key is None:
            return self._error(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                401,
            )
        if not self._key_ok(key):
            return self._error(
                f"Incorrect API key provided: {key}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                401,
                code="invalid_api_key",
            )
        return None

    def _models(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        if (error := self._auth_error(request)) is not None:
            return error
        models = ["gpt-4o-mini", "gpt-4o"]
        data = [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "openai"}
            for m in models
        ]
        return Response.json({"object": "list", "data": data})

    def _chat_completions(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        if (error := self._auth_error(request)) is not None:
            return error
        try:
            payload = request.json()
        except ValueError:
            return self._error("We could not parse the JSON body of your request.", 400)
        if not isinstance(payload, dict):
            return self._error("We could not parse the JSON body of your request.", 400)
        if not payload.get("model"):
            return self._error("you must provide a model parameter", 400)
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._error("'messages' is a required property", 400, param="messages")

        reply = self._next_reply(_last_user_text(messages))
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        finish_reason = "stop"
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": args if isinstance(args, str) else jsonlib.dumps(args),
                    },
                }
                for call_id, name, args in reply.tool_calls
            ]
            finish_reason = "tool_calls"
        prompt_tokens = _prompt_tokens(messages)
        completion_tokens = _count_tokens(reply.content or "") + len(reply.tool_calls)
        body = {
            "id": _new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": payload["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return Response.json(body, headers={"x-request-id": _new_id("req_")})


class FakeAnthropic(_ScriptedLLM):
    """Anthropic Messages API (``POST /v1/messages``, also ``GET /v1/models``).

    ``base_url`` is the bare origin (clients append ``/v1/...``).  Requires the
    ``x-api-key`` header (checked against ``api_keys``; empty set: any key) and the
    ``anthropic-version`` header, and the ``model``, ``max_tokens`` and ``messages``
    body fields.  Replies echo the last user message unless :meth:`script` was used;
    scripted tool calls become ``tool_use`` content blocks (``stop_reason``
    ``"tool_use"``).
    """

    def __init__(self, api_keys: Iterable[str] | None = None, *, host: str = LOCALHOST) -> None:
        super().__init__(api_keys, host=host)
        self.add_route("POST", "/v1/messages", self._messages)
        self.add_route("GET", "/v1/models", self._models)

    @staticmethod
    def _error(type_: str, message: str, status: int) -> Response:
        return Response.json(
            {"type": "error", "error": {"type": type_, "message": message}},
            status=status,
            headers={"request-id": _new_id("req_")},
        )

    def _check_headers(self, request: RecordedRequest) -> Response | None:
        if not self._key_ok(request.header("x-api-key")):
            return self._error("authentication_error", "invalid x-api-key", 401)
        if not request.header("anthropic-version"):
            return self._error(
                "invalid_request_error", "anthropic-version: header is required", 400
            )
        return None

    def _models(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        if (error := self._check_headers(request)) is not None:
            return error
        data = [
            {
                "type": "model",
                "id": "claude-3-5-haiku-latest",
                "display_name": "Claude Haiku",
                "created_at": "2024-10-22T00:00:00Z",
            }
        ]
        return Response.json(
            {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[0]["id"]}
        )

    def _messages(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        if (error := self._check_headers(request)) is not None:
            return error
        try:
            payload = request.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return self._error("invalid_request_error", "request body must be JSON object", 400)
        for required in ("model", "max_tokens", "messages"):
            if required not in payload:
                return self._error("invalid_request_error", f"{required}: Field required", 400)
        messages = payload["messages"]
        reply = self._next_reply(_last_user_text(messages))
        content: list[dict[str, Any]] = []
        if reply.content is not None:
            content.append({"type": "text", "text": reply.content})
        for call_id, name, args in reply.tool_calls:
            arguments = jsonlib.loads(args) if isinstance(args, str) else args
            tool_id = call_id if call_id.startswith("toolu_") else "toolu_" + call_id
            content.append({"type": "tool_use", "id": tool_id, "name": name, "input": arguments})
        system_tokens = _count_tokens(_text_of(payload.get("system")))
        body = {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": payload["model"],
            "content": content,
            "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": _prompt_tokens(messages) + system_tokens,
                "output_tokens": _count_tokens(reply.content or "") + len(reply.tool_calls),
            },
        }
        return Response.json(body, headers={"request-id": _new_id("req_")})
