"""LLM blocks over the providers' HTTP APIs.

(OpenAI-compatible chat completions, Anthropic messages.)
"""

from __future__ import annotations

import re
from typing import Any, Literal

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.library._provider_api import retry_after_seconds
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import APIKeyCredentials, CredentialsMetaInput
from blockpilot.errors import UpstreamRateLimitedError
from blockpilot.executions.context import ExecutionContext
from blockpilot.provider_facts import PROVIDERS

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
DEFAULT_BASE_URLS = {name: PROVIDERS[name].api_base for name in ("openai", "anthropic", "ollama")}
LlmModel = Literal[
    "gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "o3-mini",
    "claude-3-5-haiku-latest", "claude-sonnet-4-5", "claude-opus-4-1",
    "llama3", "llama3.1", "llama3.2", "mistral", "qwen2.5",
]  # fmt: skip
ANTHROPIC_VERSION = PROVIDERS["anthropic"].api_headers["anthropic-version"]


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


async def complete(
    context: ExecutionContext,
    credentials: APIKeyCredentials,
    model: str,
    prompt: str,
    *,
    sys_prompt: str = "",
    max_tokens: int = 1024,
) -> str:
    """One completion of *prompt* by *model* (OpenAI-compatible or Anthropic API).

    Raises:
        UpstreamRateLimitedError: The provider answered 429.
        ValueError: Any other failure, in words for the model (the run fails with it).
    """
    provider = MODEL_PROVIDERS[model]
    if credentials.provider != provider:
        # Matching only hands over a key of the model's provider; if that ever broke, a
        # key must still never be sent to another provider's API.
        raise ValueError(
            f"The model {model} needs an API key for {provider}, not for {credentials.provider}"
        )
    base = context.provider_base_url(provider) or DEFAULT_BASE_URLS[provider]
    key = credentials.api_key.get_secret_value()
    if provider == "anthropic":
        request: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": prompt}],
        }
        if sys_prompt:
            request["system"] = sys_prompt
        response = await context.http.request(
            "POST",
            f"{base}/v1/messages",
            json=request,
            headers={"anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json"},
            sensitive_headers={"x-api-key": key},
        )
    else:
        messages = [{"role": "user", "content": prompt}]
        if sys_prompt:
            messages.insert(0, {"role": "system", "content": sys_prompt})
        response = await context.http.request(
            "POST",
            f"{base}/chat/completions",
            json={"model": model, "messages": messages, "max_tokens": max_tokens},
            sensitive_headers={"Authorization": f"Bearer {key}"},
        )
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.status_code == 429:
        wait = retry_after_seconds(response, payload)
        raise UpstreamRateLimitedError(
            _provider_error(provider, 429, payload) + f"; retry after {wait:g} seconds",
            retry_after=wait,
            details={"provider": provider, "status": 429},
        )
    if response.status_code >= 400 or not isinstance(payload, dict):
        raise ValueError(_provider_error(provider, response.status_code, payload))
    try:
        if provider == "anthropic":
            return "".join(
                part.get("text", "") for part in payload["content"] if part.get("type") == "text"
            )
        return str(payload["choices"][0]["message"]["content"] or "")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise ValueError(f"{provider} API returned an unexpected response shape") from None


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
        yield (
            "response",
            await complete(
                execution_context,
                credentials,
                input_data.model,
                input_data.prompt,
                sys_prompt=input_data.sys_prompt,
                max_tokens=input_data.max_tokens,
            ),
        )


def _llm_credentials() -> Any:
    return CredentialsField(
        providers=["openai", "anthropic", "ollama"],
        supported_types=["api_key"],
        discriminator="model",
        discriminator_mapping=MODEL_PROVIDERS,
        description="API key of the model's provider",
    )


def extract_json(text: str) -> Any:
    """The first JSON value in a model's answer (code fences and prose around it ignored).

    Raises:
        ValueError: No JSON value could be read.
    """
    import json

    cleaned = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip(), flags=re.I)
    decoder = json.JSONDecoder()
    for start, char in enumerate(cleaned):
        if char in "[{":
            try:
                value, _ = decoder.raw_decode(cleaned, start)
            except json.JSONDecodeError:
                continue
            return value
    raise ValueError("the answer holds no JSON object or list")


def _schema_problem(value: Any, schema: dict[str, Any]) -> str | None:
    """Why *value* does not fit the JSON Schema *schema*, or ``None`` when it does."""
    import jsonschema  # lazily: only the structured-output blocks need it

    try:
        validator = jsonschema.validators.validator_for(schema)
        validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"json_schema is not a valid JSON Schema: {exc.message}") from None
    errors = sorted(validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(p) for p in first.path) or "the top level"
    return f"at {where}: {first.message[:300]}"


async def _json_answer(
    context: ExecutionContext,
    credentials: APIKeyCredentials,
    model: str,
    prompt: str,
    *,
    sys_prompt: str,
    max_tokens: int,
    retries: int,
    check: Any,
) -> Any:
    """Ask until the answer is JSON that *check* accepts (``check(value) -> problem | None``);
    each retry tells the model what was wrong."""
    problem = ""
    for _ in range(retries + 1):
        asked = (
            prompt
            if not problem
            else (
                f"{prompt}\n\nYour previous answer was not usable ({problem}). "
                "Answer again with only the JSON, no prose and no code fences."
            )
        )
        answer = await complete(
            context, credentials, model, asked, sys_prompt=sys_prompt, max_tokens=max_tokens
        )
        try:
            value = extract_json(answer)
        except ValueError as exc:
            problem = str(exc)
            continue
        found = check(value)
        if found is None:
            return value
        problem = found
    raise ValueError(
        f"The model gave no valid answer after {retries + 1} attempt(s); last problem: {problem}"
    )


class AIStructuredResponseGeneratorBlock(Block):
    id = "60709758-547f-4052-898d-258c5141a10b"
    effect = BlockEffect.READ
    description = (
        "Asks a large language model for a JSON answer with given fields or matching a JSON "
        "Schema; the answer is validated and re-asked when invalid."
    )
    categories = frozenset({BlockCategory.AI, BlockCategory.DATA})

    class Input(BlockSchemaInput):
        prompt: str = SchemaField(description="What to ask the model", max_length=200_000)
        expected_format: dict[str, str] = SchemaField(
            default_factory=dict,
            description="Fields the answer must have: field name → what it holds",
        )
        json_schema: dict[str, Any] = SchemaField(
            default_factory=dict,
            description="A JSON Schema the answer must match (instead of expected_format)",
        )
        model: LlmModel = SchemaField(default="gpt-4o-mini", description="The model to use")
        sys_prompt: str = SchemaField(default="", description="System prompt", max_length=50_000)
        retry: Integer = SchemaField(
            default=3, ge=0, le=5, description="Re-asks allowed when the answer is invalid"
        )
        max_tokens: Integer = SchemaField(
            default=2048, ge=1, le=32_000, description="Most tokens per answer"
        )
        credentials: CredentialsMetaInput = _llm_credentials()

    class Output(BlockSchemaOutput):
        response: Any = SchemaField(description="The validated JSON answer")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: APIKeyCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        import json

        schema = input_data.json_schema
        if not schema and input_data.expected_format:
            schema = {
                "type": "object",
                "properties": {
                    name: {"description": what} for name, what in input_data.expected_format.items()
                },
                "required": list(input_data.expected_format),
            }
        if not schema:
            yield "error", "Give expected_format (field → description) or json_schema"
            return
        _schema_problem({}, schema)  # a broken schema fails now, before any model call
        prompt = (
            f"{input_data.prompt}\n\nReply with only a JSON value matching this JSON Schema:\n"
            f"{json.dumps(schema, indent=1)}"
        )
        yield (
            "response",
            await _json_answer(
                execution_context,
                credentials,
                input_data.model,
                prompt,
                sys_prompt=input_data.sys_prompt,
                max_tokens=input_data.max_tokens,
                retries=input_data.retry,
                check=lambda value: _schema_problem(value, schema),
            ),
        )


SummaryStyle = Literal["concise", "detailed", "bullet points", "numbered list"]
CHUNK_CHARS = 12_000  # about 3,000 tokens: fits every listed model with room for the answer
MAX_SUMMARY_INPUT = 500_000


def chunk_text(text: str, size: int = CHUNK_CHARS, overlap: int = 400) -> list[str]:
    """Split *text* into pieces of at most *size* characters, at paragraph or sentence ends
    where possible, each starting *overlap* characters before the previous one ended."""
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            window = text[start:end]
            cut = max(window.rfind("\n\n"), window.rfind(". "))
            if cut > size // 2:
                end = start + cut + 1
        chunks.append(text[start:end].strip())
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
    return [c for c in chunks if c]


class AITextSummarizerBlock(Block):
    id = "feb006b9-7788-4931-9c28-87b73d52dd1f"
    effect = BlockEffect.READ
    description = (
        "Summarises a long text (an article, transcript or report) with a large language "
        "model, piece by piece, then combines the pieces."
    )
    categories = frozenset({BlockCategory.AI, BlockCategory.TEXT})

    class Input(BlockSchemaInput):
        text: str = SchemaField(
            description="The text to summarise", min_length=1, max_length=MAX_SUMMARY_INPUT
        )
        model: LlmModel = SchemaField(default="gpt-4o-mini", description="The model to use")
        focus: str = SchemaField(
            default="general information", description="What the summary should focus on"
        )
        style: SummaryStyle = SchemaField(default="concise", description="Form of the summary")
        max_tokens: Integer = SchemaField(
            default=1024, ge=50, le=8_000, description="Most tokens of the summary"
        )
        credentials: CredentialsMetaInput = _llm_credentials()

    class Output(BlockSchemaOutput):
        summary: str = SchemaField(description="The summary")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: APIKeyCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        async def summarise(text: str, final: bool) -> str:
            what = "Summarise" if final else "Summarise this part of a longer text"
            prompt = (
                f"{what}, focusing on {input_data.focus}. Write the summary as "
                f"{input_data.style}. Reply with the summary only.\n\n---\n{text}\n---"
            )
            return await complete(
                execution_context,
                credentials,
                input_data.model,
                prompt,
                max_tokens=input_data.max_tokens,
            )

        text = input_data.text
        while len(text) > CHUNK_CHARS:
            parts = [await summarise(chunk, final=False) for chunk in chunk_text(text)]
            combined = "\n\n".join(parts)
            if len(combined) >= len(text):  # the model is not shortening: stop going round
                text = combined[: CHUNK_CHARS * 2]
                break
            text = combined
        yield "summary", await summarise(text, final=True)


class AIListGeneratorBlock(Block):
    id = "2531d1f0-f76f-4b8a-831f-94cbb89dd8e0"
    effect = BlockEffect.READ
    description = (
        "Generates a list of items (ideas, names, steps, entities found in a text) with a "
        "large language model; returns it as a real list."
    )
    categories = frozenset({BlockCategory.AI, BlockCategory.TEXT})

    class Input(BlockSchemaInput):
        focus: str = SchemaField(
            description="What the list is, e.g. 'ten names for a bakery'", max_length=10_000
        )
        source_data: str = SchemaField(
            default="", description="Text to take the items from, if any", max_length=200_000
        )
        model: LlmModel = SchemaField(default="gpt-4o-mini", description="The model to use")
        max_retries: Integer = SchemaField(
            default=3, ge=0, le=5, description="Re-asks allowed when the answer is no list"
        )
        max_tokens: Integer = SchemaField(
            default=2048, ge=1, le=32_000, description="Most tokens of the answer"
        )
        credentials: CredentialsMetaInput = _llm_credentials()

    class Output(BlockSchemaOutput):
        generated_list: list[str] = SchemaField(description="The items")
        list_item: str = SchemaField(description="Each item, one at a time")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: APIKeyCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        prompt = f"Make this list: {input_data.focus}."
        if input_data.source_data:
            prompt += f"\nTake the items from this text:\n---\n{input_data.source_data}\n---"
        prompt += '\nReply with only a JSON array of strings, e.g. ["first", "second"].'

        def check(value: Any) -> str | None:
            if not isinstance(value, list) or not all(
                isinstance(v, str | int | float) for v in value
            ):
                return "the answer must be a JSON array of strings"
            return None

        items = await _json_answer(
            execution_context,
            credentials,
            input_data.model,
            prompt,
            sys_prompt="",
            max_tokens=input_data.max_tokens,
            retries=input_data.max_retries,
            check=check,
        )
        generated = [str(item) for item in items]
        yield "generated_list", generated
        for item in generated:
            yield "list_item", item
