"""Where ``blockpilot chat`` finds its model: any OpenAI-compatible chat-completions endpoint.

Configured by the operator (trusted, like ``BLOCKPILOT_PROVIDER_*_BASE_URL``)::

    BLOCKPILOT_CHAT_BASE_URL   e.g. https://api.openai.com/v1 or http://localhost:11434/v1
    BLOCKPILOT_CHAT_MODEL      e.g. gpt-4o-mini
    BLOCKPILOT_CHAT_API_KEY    optional (local servers often need none)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import SecretStr

from blockpilot.errors import ConfigurationError

ENV_BASE_URL = "BLOCKPILOT_CHAT_BASE_URL"
ENV_MODEL = "BLOCKPILOT_CHAT_MODEL"
ENV_API_KEY = "BLOCKPILOT_CHAT_API_KEY"


@dataclass(frozen=True)
class ChatConfig:
    """The chat model endpoint. Build with :meth:`resolve` to get checked values."""

    base_url: str
    model: str
    api_key: SecretStr | None = field(default=None, repr=False)

    @classmethod
    def resolve(
        cls,
        *,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ChatConfig:
        """Explicit values first, then the environment.

        Raises:
            ConfigurationError: No base URL or model, or a base URL that is not http(s).
        """
        source = os.environ if env is None else env
        base_url = base_url or source.get(ENV_BASE_URL) or ""
        model = model or source.get(ENV_MODEL) or ""
        key = api_key or source.get(ENV_API_KEY) or None
        if not base_url:
            raise ConfigurationError(
                f"No chat model endpoint: set {ENV_BASE_URL} (an OpenAI-compatible base URL, e.g. "
                "https://api.openai.com/v1) or pass --base-url"
            )
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"{ENV_BASE_URL} must be an http(s) URL, got {base_url[:80]!r}"
            )
        if not model:
            raise ConfigurationError(
                f"No chat model: set {ENV_MODEL} (e.g. gpt-4o-mini) or pass --model"
            )
        return cls(
            base_url=base_url.rstrip("/"), model=model, api_key=SecretStr(key) if key else None
        )
