"""Structured answers, summaries and lists from LLMs, against FakeOpenAI and FakeAnthropic."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blockpilot.blocks.library.llm import (
    AIListGeneratorBlock,
    AIStructuredResponseGeneratorBlock,
    AITextSummarizerBlock,
    chunk_text,
    extract_json,
)
from blockpilot.testing import FakeAnthropic, FakeOpenAI, LocalHTTPServer, Response

from .lib_provider_helpers import (
    add_key,
    assert_failed,
    assert_ok,
    elsewhere,
    headers_seen,
    missing_credentials,
    provider_pilot,
    redirect_everything,
    run,
)

OPENAI_KEY = "sk-canary-openai-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-canary-0123456789abcdef"
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
}
CASES = [
    (
        AIStructuredResponseGeneratorBlock,
        {"prompt": "Who?", "expected_format": {"a": "x"}},
        '{"a": 1}',
    ),
    (AITextSummarizerBlock, {"text": "A short text."}, "Short."),
    (AIListGeneratorBlock, {"focus": "two colours"}, '["red", "blue"]'),
]
IDS = [c[0].__name__ for c in CASES]


@pytest.fixture
def openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_keys={OPENAI_KEY}) as srv:
        yield srv


@pytest.fixture
def anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_keys={ANTHROPIC_KEY}) as srv:
        yield srv


@pytest.fixture
def other() -> Iterator[LocalHTTPServer]:
    with elsewhere() as srv:
        yield srv


@pytest.fixture
async def env(make_pilot, monkeypatch, openai, anthropic, other):
    bases = {"openai": openai.base_url, "anthropic": anthropic.base_url}
    return await provider_pilot(make_pilot, monkeypatch, bases, allowed=[f"127.0.0.1:{other.port}"])


def _prompts(srv: FakeOpenAI) -> list[str]:
    return [r.json()["messages"][-1]["content"] for r in srv.requests]


async def test_structured_answer_is_validated_and_re_asked(env, openai) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "openai", OPENAI_KEY)
    openai.script(
        [
            "Sure! Here it is.",
            '{"name": "Ada", "age": -1}',
            '```json\n{"name": "Ada", "age": 36}\n```',
        ]
    )
    data = {"prompt": "Who wrote the first program?", "json_schema": PERSON}
    out = assert_ok(await run(pilot, alice, AIStructuredResponseGeneratorBlock.id, data))
    assert out["response"] == [{"name": "Ada", "age": 36}]
    prompts = _prompts(openai)
    assert len(prompts) == 3 and '"required"' in prompts[0]
    assert "no JSON object" in prompts[1] and "at age" in prompts[2]


async def test_structured_answer_from_expected_format_with_anthropic(env, anthropic) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "anthropic", ANTHROPIC_KEY)
    anthropic.script(['{"city": "Paris", "country": "France"}'])
    data = {
        "prompt": "Capital of France?",
        "expected_format": {"city": "the city", "country": "its country"},
        "model": "claude-3-5-haiku-latest",
    }
    out = assert_ok(await run(pilot, alice, AIStructuredResponseGeneratorBlock.id, data))
    assert out["response"] == [{"city": "Paris", "country": "France"}]
    assert anthropic.last_request.header("x-api-key") == ANTHROPIC_KEY


async def test_structured_answer_gives_up_after_the_retries(env, openai) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "openai", OPENAI_KEY)
    openai.script(['{"name": 1}', '{"name": 2}'])
    data = {"prompt": "x", "json_schema": PERSON, "retry": 1}
    r = await run(pilot, alice, AIStructuredResponseGeneratorBlock.id, data)
    assert_failed(r, "after 2 attempt(s)")
    assert openai.hits == 2


async def test_broken_schema_or_none_fails_before_any_call(env, openai) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "openai", OPENAI_KEY)
    r = await run(
        pilot,
        alice,
        AIStructuredResponseGeneratorBlock.id,
        {"prompt": "x", "json_schema": {"type": 12}},
    )
    assert_failed(r, "not a valid JSON Schema")
    r = await run(pilot, alice, AIStructuredResponseGeneratorBlock.id, {"prompt": "x"})
    assert_failed(r, "expected_format")
    assert openai.hits == 0


async def test_long_text_is_summarised_in_chunks(env, openai) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "openai", OPENAI_KEY)
    text = "\n\n".join(f"Paragraph {n}. " + "Words and more words. " * 40 for n in range(40))
    chunks = chunk_text(text)
    assert len(chunks) >= 3 and all(len(c) <= 12_000 for c in chunks)
    openai.script([f"part {n}" for n in range(len(chunks))] + ["The final summary."])
    data = {"text": text, "style": "bullet points", "focus": "numbers"}
    out = assert_ok(await run(pilot, alice, AITextSummarizerBlock.id, data))
    assert out["summary"] == ["The final summary."]
    prompts = _prompts(openai)
    assert len(prompts) == len(chunks) + 1
    assert "part of a longer text" in prompts[0] and "bullet points" in prompts[0]
    assert "part 0" in prompts[-1] and f"part {len(chunks) - 1}" in prompts[-1]


async def test_list_generator_returns_a_real_list(env, openai) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "openai", OPENAI_KEY)
    openai.script(["red, blue", '["red", "blue", 3]'])
    data = {"focus": "colours in the text", "source_data": "The red car and the blue sky."}
    out = assert_ok(await run(pilot, alice, AIListGeneratorBlock.id, data))
    assert out == {"generated_list": [["red", "blue", "3"]], "list_item": ["red", "blue", "3"]}
    assert "The red car" in _prompts(openai)[0]


def test_extract_json_reads_the_first_value() -> None:
    assert extract_json('Here: {"a": [1, {"b": 2}]} trailing') == {"a": [1, {"b": 2}]}
    assert extract_json("```json\n[1, 2]\n```") == [1, 2]
    with pytest.raises(ValueError):
        extract_json("no json {here")


@pytest.mark.parametrize(("block", "data", "answer"), CASES, ids=IDS)
async def test_missing_key_needs_setup_for_the_models_provider(env, openai, block, data, answer):
    pilot, alice, bob = env
    await add_key(pilot, alice, "anthropic", ANTHROPIC_KEY)
    for user in (alice, bob):
        missing = missing_credentials(await run(pilot, user, block.id, data))
        assert missing["provider"] == "openai" and missing["types"] == ["api_key"]
    assert openai.hits == 0


@pytest.mark.parametrize(("block", "data", "answer"), CASES, ids=IDS)
async def test_upstream_errors(env, openai, block, data, answer) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "openai", "sk-wrong-0000000000")
    assert_failed(await run(pilot, alice, block.id, data), "HTTP 401")
    await add_key(pilot, alice, "openai", OPENAI_KEY)
    body = {"error": {"message": "Rate limit reached", "type": "requests"}}
    openai.queue_response(Response.json(body, 429, {"Retry-After": "20"}))
    r = await run(pilot, alice, block.id, data)
    assert_failed(r, "Rate limit reached", "retry after 20 seconds")
    openai.script([answer])
    assert_ok(await run(pilot, alice, block.id, data))


@pytest.mark.parametrize(("block", "data", "answer"), CASES, ids=IDS)
async def test_key_never_reaches_another_host(env, openai, other, block, data, answer) -> None:
    pilot, alice, _ = env
    await add_key(pilot, alice, "openai", OPENAI_KEY)
    redirect_everything(openai, other)
    r = await run(pilot, alice, block.id, data)
    assert other.hits >= 1
    assert OPENAI_KEY not in headers_seen(other) and OPENAI_KEY not in str(r)
