"""LLM blocks over the providers' HTTP APIs.

(OpenAI-compatible chat completions, Anthropic messages.)
"""

from __future__ import annotations

from typing import Any, Literal

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import APIKeyCredentials, CredentialsMetaInput
from blockpilot.executions.context import ExecutionContext

MODEL_PROVIDERS: dict[str, str] = {
    "gpt-4o-mini": "openai",
    "gpt-4o": "openai",
    "gpt-4.1": "openai",
    "gpt-4.1-mini": "openai",
    "o3-mini": "openai",
    "claude-3-5-haiku-latest": "anthropic",
    "claude-sonnet-4-5": "anthropic",
    "claude-opus-4-1": "anthropic",
    "llama3": "ollama",
    "llama3.1": "ollama",
    "llama3.2": "ollama",
    "mistral": "ollama",
    "qwen2.5": "ollama",
}
DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "ollama": "http://localhost:11434/v1",
}
LlmModel = Literal[
    "gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "o3-mini",
    "claude-3-5-haiku-latest", "claude-sonnet-4-5", "claude-opus-4-1",
    "llama3", "llama3.1", "llama3.2", "mistral", "qwen2.5",
]  # fmt: skip
ANTHROPIC_VERSION = "2023-06-01"


def _provider_error(provider: str, status: int, payload: Any) -> str:
    detail = ""
    if isinstance(payload, dict):
        err = payload.get("error")
        detail = (
            err.get("message", "")
            if isinstance(err, dict)
            else str(err or payload.get("message", ""))
        )
    return f"{provider} API returned HTTP {status}" + (f": {detail}" if detail else "")


class AITextGeneratorBlock(Block):
    id = "1f292d4a-41a4-4977-9684-7c8d560b9f91"
    effect = BlockEffect.READ
    description = (
        "Generates text with a large language model (OpenAI GPT, Anthropic Claude or a local "
        "Ollama model) from a prompt."
    )
    categories = frozenset({BlockCategory.AI, BlockCategory.TEXT})

    class Input(BlockSchemaInput):
        prompt: str = SchemaField(description="The prompt to send to the model", max_length=200_000)
        model: LlmModel = SchemaField(
            default="gpt-4o-mini", description="The language model to use"
        )
        sys_prompt: str = SchemaField(
            default="", description="Optional system prompt", max_length=50_000
        )
        max_tokens: Integer = SchemaField(
            default=1024, ge=1, le=32_000, description="Most tokens to generate"
        )
        credentials: CredentialsMetaInput = CredentialsField(
            providers=["openai", "anthropic", "ollama"],
            supported_types=["api_key"],
            discriminator="model",
            discriminator_mapping=MODEL_PROVIDERS,
            description="API key of the model's provider",
        )

    class Output(BlockSchemaOutput):
        response: str = SchemaField(description="The model's text response")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: APIKeyCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        provider = MODEL_PROVIDERS[input_data.model]
        if credentials.provider != provider:
            # Matching only hands over a key of the model's provider; if that ever broke, a
            # key must still never be sent to another provider's API.
            yield (
                "error",
                (
                    f"The model {input_data.model} needs an API key for {provider}, "
                    f"not for {credentials.provider}"
                ),
            )
            return
        base = execution_context.provider_base_url(provider) or DEFAULT_BASE_URLS[provider]
        key = credentials.api_key.get_secret_value()
        if provider == "anthropic":
            request: dict[str, Any] = {
                "model": input_data.model,
                "max_tokens": input_data.max_tokens,
                "messages": [{"role": "user", "content": input_data.prompt}],
            }
            if input_data.sys_prompt:
                request["system"] = input_data.sys_prompt
            response = await execution_context.http.request(
                "POST",
                f"{base}/v1/messages",
                json=request,
                headers={
                    "anthropic-version": ANTHROPIC_VERSION,
                    "content-type": "application/json",
                },
                sensitive_headers={"x-api-key": key},
            )
        else:
            messages = [{"role": "user", "content": input_data.prompt}]
            if input_data.sys_prompt:
                messages.insert(0, {"role": "system", "content": input_data.sys_prompt})
            response = await execution_context.http.request(
                "POST",
                f"{base}/chat/completions",
                json={
                    "model": input_data.model,
                    "messages": messages,
                    "max_tokens": input_data.max_tokens,
                },
                sensitive_headers={"Authorization": f"Bearer {key}"},
            )
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400 or not isinstance(payload, dict):
            yield "error", _provider_error(provider, response.status_code, payload)
            return
        try:
            if provider == "anthropic":
                text = "".join(
                    part.get("text", "")
                    for part in payload["content"]
                    if part.get("type") == "text"
                )
            else:
                text = payload["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            yield "error", f"{provider} API returned an unexpected response shape"
            return
        yield "response", text
