"""A minimal OpenAI-compatible chat-completions client (plain httpx; the endpoint is the
operator's, so it is not sent through the guarded block client)."""

from __future__ import annotations

from typing import Any

import httpx

from blockpilot.chat.config import ChatConfig
from blockpilot.errors import ChatProviderError as ChatProviderError  # callers import it here
from blockpilot.redaction import SECRETS, Redactor


class ChatCompletionsClient:
    """``POST {base_url}/chat/completions`` with tools; returns the assistant message."""

    def __init__(
        self, config: ChatConfig, *, timeout: float = 120.0, http: httpx.AsyncClient | None = None
    ) -> None:
        self.config = config
        key = config.api_key.get_secret_value() if config.api_key else None
        if key:
            SECRETS.add([key])
        self._redactor = Redactor([key] if key else [])
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = http or httpx.AsyncClient(timeout=timeout, headers=headers)
        self._owns_http = http is None

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The assistant message of one completion (``content`` and maybe ``tool_calls``).

        Raises:
            ChatProviderError: Network failure, an HTTP error, or an unexpected body. The
                message never contains the API key.
        """
        body: dict[str, Any] = {"model": self.config.model, "messages": messages}
        if tools:
            body["tools"] = tools
            body["tool_choice"] = "auto"
        url = f"{self.config.base_url}/chat/completions"
        try:
            response = await self._http.post(url, json=body)
        except httpx.HTTPError as exc:
            raise ChatProviderError(
                f"Cannot reach the chat model at {self.config.base_url}: {type(exc).__name__}"
            ) from None
        if response.status_code >= 400:
            raise ChatProviderError(
                self._scrub(
                    f"The chat model answered HTTP {response.status_code}: {_detail(response)}"
                )
            )
        try:
            message = response.json()["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ChatProviderError(
                "The chat model answered something that is not a chat completion"
            ) from None
        if not isinstance(message, dict):
            raise ChatProviderError(
                "The chat model answered something that is not a chat completion"
            )
        return message

    def _scrub(self, text: str) -> str:
        return self._redactor.scrub_text(text)


def _detail(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text[:300]
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])[:300]
    return str(payload)[:300]
