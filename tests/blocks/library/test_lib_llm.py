"""AITextGeneratorBlock against FakeOpenAI and FakeAnthropic over real sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blockpilot.blocks.library.llm import ANTHROPIC_VERSION, AITextGeneratorBlock
from blockpilot.credentials.models import APIKeyCredentials
from blockpilot.errors import BlockExecutionError
from blockpilot.executions.context import ExecutionContext
from blockpilot.testing import FakeAnthropic, FakeOpenAI, Response

LLM = AITextGeneratorBlock.id
OPENAI_KEY = "sk-test-openai-0123456789abcdefABCDEF"
ANTHROPIC_KEY = "sk-ant-test-0123456789abcdefABCDEF"


@pytest.fixture
def openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_keys={OPENAI_KEY}) as srv:
        yield srv


@pytest.fixture
def anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_keys={ANTHROPIC_KEY}) as srv:
        yield srv


@pytest.fixture
async def llm_pilot(settings_factory, monkeypatch, make_pilot, openai, anthropic):
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_OPENAI_BASE_URL", openai.base_url)
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_ANTHROPIC_BASE_URL", anthropic.origin)
    pilot = await make_pilot()
    user, _ = await pilot.users.create("alice")
    return pilot, user


async def _key(pilot, user, provider: str, key: str) -> str:
    meta = await pilot.add_credentials(
        user.id, {"provider": provider, "type": "api_key", "api_key": key}
    )
    return meta.id


async def test_openai_model_with_openai_key(llm_pilot, run, openai, anthropic) -> None:
    pilot, alice = llm_pilot
    await _key(pilot, alice, "openai", OPENAI_KEY)
    r = await run(pilot, alice, LLM, {"prompt": "Say hi", "model": "gpt-4o"})
    assert r["type"] == "block_output", r
    assert r["outputs"] == {"response": ["echo: Say hi"]}
    assert openai.hits == 1 and anthropic.hits == 0
    req = openai.last_request
    assert req.path == "/v1/chat/completions"
    assert req.header("authorization") == f"Bearer {OPENAI_KEY}"
    body = req.json()
    assert body["model"] == "gpt-4o"
    assert body["messages"] == [{"role": "user", "content": "Say hi"}]
    assert body["max_tokens"] == 1024


async def test_model_defaults_from_schema(llm_pilot, run, openai) -> None:
    pilot, alice = llm_pilot
    await _key(pilot, alice, "openai", OPENAI_KEY)
    r = await run(pilot, alice, LLM, {"prompt": "no model given"})
    assert r["type"] == "block_output", r
    assert openai.last_request.json()["model"] == "gpt-4o-mini"


async def test_sys_prompt_sent_as_system_message(llm_pilot, run, openai) -> None:
    pilot, alice = llm_pilot
    await _key(pilot, alice, "openai", OPENAI_KEY)
    openai.script(["scripted answer"])
    r = await run(
        pilot, alice, LLM, {"prompt": "question", "sys_prompt": "Be terse.", "max_tokens": 5}
    )
    assert r["outputs"] == {"response": ["scripted answer"]}
    body = openai.last_request.json()
    assert body["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "question"},
    ]
    assert body["max_tokens"] == 5


async def test_anthropic_model_with_anthropic_key(llm_pilot, run, openai, anthropic) -> None:
    pilot, alice = llm_pilot
    await _key(pilot, alice, "openai", OPENAI_KEY)
    await _key(pilot, alice, "anthropic", ANTHROPIC_KEY)
    r = await run(
        pilot,
        alice,
        LLM,
        {"prompt": "Hello Claude", "model": "claude-3-5-haiku-latest", "sys_prompt": "Be kind."},
    )
    assert r["type"] == "block_output", r
    assert r["outputs"] == {"response": ["echo: Hello Claude"]}
    assert anthropic.hits == 1 and openai.hits == 0
    req = anthropic.last_request
    assert req.path == "/v1/messages"
    assert req.header("x-api-key") == ANTHROPIC_KEY
    assert req.header("anthropic-version") == ANTHROPIC_VERSION
    assert req.header("authorization") is None  # the key goes only in x-api-key
    body = req.json()
    assert body["model"] == "claude-3-5-haiku-latest"
    assert body["system"] == "Be kind."
    assert body["messages"] == [{"role": "user", "content": "Hello Claude"}]
    assert body["max_tokens"] == 1024


async def test_anthropic_key_only_and_openai_model_needs_setup(
    llm_pilot, run, openai, anthropic
) -> None:
    pilot, alice = llm_pilot
    await _key(pilot, alice, "anthropic", ANTHROPIC_KEY)
    r = await run(pilot, alice, LLM, {"prompt": "hi", "model": "gpt-4o-mini"})
    assert r["type"] == "setup_requirements", r
    missing = r["setup_info"]["user_readiness"]["missing_credentials"]["credentials"]
    assert missing["provider"] == "openai"
    assert missing["type"] == "api_key"
    assert r["setup_info"]["requirements"]["credentials"] == [missing]
    # Without a model the schema default (gpt-4o-mini → openai) decides too.
    r = await run(pilot, alice, LLM, {"prompt": "hi"})
    assert r["type"] == "setup_requirements", r
    assert (
        r["setup_info"]["user_readiness"]["missing_credentials"]["credentials"]["provider"]
        == "openai"
    )
    assert openai.hits == 0 and anthropic.hits == 0


async def test_wrong_key_error_is_scrubbed(llm_pilot, run, openai, caplog) -> None:
    caplog.set_level("DEBUG")
    pilot, alice = llm_pilot
    wrong = "sk-wrong-key-9876543210zyxwvutsrqpo"
    await _key(pilot, alice, "openai", wrong)
    r = await run(pilot, alice, LLM, {"prompt": "hi"})
    assert r["type"] == "error", r
    assert r["code"] == "block_failed"
    assert "401" in r["message"]
    # The fake echoes the full key in its error body; none of it may come back.
    text = str(r)
    assert wrong not in text
    assert wrong[:-4] not in text and wrong[3:] not in text
    records = await pilot.executions.list(alice.id)
    assert records and records[0].status == "failed"
    assert wrong not in str(records[0].error_message) and wrong not in str(
        records[0].input_redacted
    )
    for record in caplog.records:
        assert wrong not in record.getMessage() and wrong not in str(record.__dict__)


async def test_wrong_key_unknown_shape_is_scrubbed(llm_pilot, run, openai) -> None:
    # A key with no well-known prefix: only the exact-value scrubbing can catch it.
    pilot, alice = llm_pilot
    wrong = "plainkeywithoutprefix1234567890"
    await _key(pilot, alice, "openai", wrong)
    r = await run(pilot, alice, LLM, {"prompt": "hi"})
    assert r["type"] == "error", r
    assert wrong not in str(r)


async def test_anthropic_wrong_key(llm_pilot, run, anthropic) -> None:
    pilot, alice = llm_pilot
    await _key(pilot, alice, "anthropic", "sk-ant-wrong-000000000000000")
    r = await run(pilot, alice, LLM, {"prompt": "hi", "model": "claude-sonnet-4-5"})
    assert r["type"] == "error" and r["code"] == "block_failed", r
    assert "anthropic" in r["message"] and "401" in r["message"]
    assert "sk-ant-wrong" not in str(r)


async def test_provider_5xx_is_block_error(llm_pilot, run, openai) -> None:
    pilot, alice = llm_pilot
    await _key(pilot, alice, "openai", OPENAI_KEY)
    openai.queue_response(Response.json({"error": {"message": "overloaded"}}, status=503))
    r = await run(pilot, alice, LLM, {"prompt": "hi"})
    assert r["type"] == "error" and r["code"] == "block_failed", r
    assert "503" in r["message"] and "overloaded" in r["message"]


async def test_unexpected_response_shape_is_block_error(llm_pilot, run, openai) -> None:
    pilot, alice = llm_pilot
    await _key(pilot, alice, "openai", OPENAI_KEY)
    openai.queue_response(Response.json({"choices": []}))
    r = await run(pilot, alice, LLM, {"prompt": "hi"})
    assert r["type"] == "error" and r["code"] == "block_failed", r
    openai.queue_response(Response.text("not json"))
    r = await run(pilot, alice, LLM, {"prompt": "hi"})
    assert r["type"] == "error" and r["code"] == "block_failed", r


async def test_unknown_model_is_input_validation_error(llm_pilot, run, openai) -> None:
    pilot, alice = llm_pilot
    await _key(pilot, alice, "openai", OPENAI_KEY)
    r = await run(pilot, alice, LLM, {"prompt": "hi", "model": "gpt-99"})
    assert r["type"] == "input_validation_error", r
    assert "model" in r["errors"]
    assert openai.hits == 0


async def test_response_never_contains_key_even_if_model_repeats_it(llm_pilot, run, openai) -> None:
    pilot, alice = llm_pilot
    await _key(pilot, alice, "openai", OPENAI_KEY)
    openai.script([f"your key is {OPENAI_KEY}"])
    r = await run(pilot, alice, LLM, {"prompt": "what is my key?"})
    assert r["type"] == "block_output", r
    assert OPENAI_KEY not in str(r)


async def test_platform_key_used_only_when_user_has_none(
    settings_factory, monkeypatch, make_pilot, run, openai
) -> None:
    platform_key = "sk-platform-key-000000000000000000"
    openai.allow_key(platform_key)
    monkeypatch.setenv("BLOCKPILOT_PROVIDER_OPENAI_BASE_URL", openai.base_url)
    monkeypatch.setenv("BLOCKPILOT_SYSTEM_OPENAI_API_KEY", platform_key)
    pilot = await make_pilot()
    alice, _ = await pilot.users.create("alice")
    r = await run(pilot, alice, LLM, {"prompt": "hi"})
    assert r["type"] == "block_output", r
    assert openai.last_request.header("authorization") == f"Bearer {platform_key}"
    assert r["credentials_used"][0]["reason"] == "system"
    assert platform_key not in str(r)
    await _key(pilot, alice, "openai", OPENAI_KEY)
    r = await run(pilot, alice, LLM, {"prompt": "hi"})
    assert openai.last_request.header("authorization") == f"Bearer {OPENAI_KEY}"
    assert r["credentials_used"][0]["reason"] != "system"


async def test_a_key_is_never_sent_to_another_providers_api(llm_pilot, openai, anthropic) -> None:
    pilot, alice = llm_pilot
    block = AITextGeneratorBlock()
    context = ExecutionContext(user_id=alice.id).attach(
        http=pilot.http, provider_urls={"anthropic": anthropic.origin}
    )
    openai_key = APIKeyCredentials(provider="openai", api_key=OPENAI_KEY)
    typed = block.validate_input(
        {
            "prompt": "hi",
            "model": "claude-3-5-haiku-latest",
            "credentials": {"id": openai_key.id, "provider": "openai", "type": "api_key"},
        }
    )
    with pytest.raises(BlockExecutionError, match="needs an API key for anthropic, not for openai"):
        async for _ in block.execute(typed, credentials=openai_key, execution_context=context):
            pass
    assert openai.hits == 0 and anthropic.hits == 0
