"""Credential resolution through run_block (docs/architecture.md, steps 8-11)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from blockpilot.credentials.manager import system_credential_id
from blockpilot.pilot import Pilot
from blockpilot.storage.tables import credentials as credentials_table
from blockpilot.storage.users import User
from tests.tools.bp_helpers import add_api_key, add_host_scoped, add_oauth, run_block
from tests.tools.bp_test_blocks import (
    CALLS,
    ApiKeyEchoBlock,
    GithubScopedBlock,
    HostRequestBlock,
    LlmLikeBlock,
    calls_of,
)


def used(data: dict[str, Any]) -> tuple[str, str]:
    """(credential id, reason) of the single credential a block_output reports."""
    assert data["type"] == "block_output", data
    (choice,) = data["credentials_used"]
    assert choice["field"] == "credentials"
    return choice["id"], choice["reason"]


def received(block: str) -> Any:
    """The decrypted credentials object the last run of *block* received."""
    return calls_of(block)[-1]["kwargs"]["credentials"]


def missing_entry(data: dict[str, Any]) -> dict[str, Any]:
    assert data["type"] == "setup_requirements", data
    (entry,) = data["setup_info"]["requirements"]["credentials"]
    assert data["setup_info"]["user_readiness"]["missing_credentials"] == {"credentials": entry}
    return entry


# --------------------------------------------------------------------------- basics


async def test_the_matched_credential_is_passed_decrypted_as_a_keyword(
    pilot: Pilot, alice: User
) -> None:
    cred_id = await add_api_key(pilot, alice.id, key="sk-alice-key-0123456789", title="Alice key")
    data = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "hi"})
    assert used(data) == (cred_id, "only_match")
    assert data["credentials_used"][0]["title"] == "Alice key"
    assert data["outputs"]["credential_id"] == [cred_id]
    creds = received("ApiKeyEchoBlock")
    assert creds.api_key.get_secret_value() == "sk-alice-key-0123456789"
    # The execution record names the credential, never its secret.
    record = await pilot.executions.get(alice.id, data["execution_id"])
    assert record is not None and record.credential_ids == [cred_id]
    assert "credentials" not in record.input_redacted


async def test_metadata_is_injected_into_input_data_when_the_field_is_absent(
    pilot: Pilot, alice: User
) -> None:
    cred_id = await add_api_key(pilot, alice.id, title="Stored title")
    await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "hi"})
    meta = calls_of("ApiKeyEchoBlock")[-1]["input"].credentials
    assert (meta.id, meta.provider, meta.type, meta.title) == (
        cred_id,
        "openai",
        "api_key",
        "Stored title",
    )


async def test_metadata_given_in_input_data_is_kept(pilot: Pilot, alice: User) -> None:
    cred_id = await add_api_key(pilot, alice.id, title="Stored title")
    given = {"id": cred_id, "provider": "openai", "type": "api_key", "title": "Caller's title"}
    data = await run_block(
        pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "hi", "credentials": given}
    )
    assert used(data) == (cred_id, "requested")
    meta = calls_of("ApiKeyEchoBlock")[-1]["input"].credentials
    assert meta.title == "Caller's title"
    assert meta.id == cred_id


async def test_metadata_given_with_a_wrong_provider_is_replaced(pilot: Pilot, alice: User) -> None:
    cred_id = await add_api_key(pilot, alice.id, title="Stored title")
    given = {"id": cred_id, "provider": "anthropic", "type": "api_key", "title": "Lie"}
    data = await run_block(
        pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "hi", "credentials": given}
    )
    assert used(data) == (cred_id, "requested")
    meta = calls_of("ApiKeyEchoBlock")[-1]["input"].credentials
    assert (meta.provider, meta.title) == ("openai", "Stored title")


async def test_credential_id_given_as_a_bare_string(pilot: Pilot, alice: User) -> None:
    await add_api_key(pilot, alice.id, key="sk-first-0123456789")
    second = await add_api_key(pilot, alice.id, key="sk-second-0123456789")
    data = await run_block(
        pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "hi", "credentials": second}
    )
    assert used(data) == (second, "requested")
    assert calls_of("ApiKeyEchoBlock")[-1]["input"].credentials.id == second


async def test_dry_run_resolves_credentials_without_running(pilot: Pilot, alice: User) -> None:
    cred_id = await add_api_key(pilot, alice.id)
    data = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "hi"}, dry_run=True)
    assert used(data) == (cred_id, "only_match")
    assert data["is_dry_run"] is True
    assert CALLS == []


async def test_an_unreadable_credential_is_credentials_unavailable(
    pilot: Pilot, alice: User
) -> None:
    cred_id = await add_api_key(pilot, alice.id)
    async with pilot.engine.begin() as conn:  # tampering with the ciphertext at rest
        await conn.execute(
            update(credentials_table)
            .where(credentials_table.c.id == cred_id)
            .values(secret=b"garbage" * 10)
        )
    data = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "hi"})
    assert data["type"] == "error"
    assert data["code"] == "credentials_unavailable"
    assert data["message"].startswith("Failed to retrieve credentials for credentials")
    assert CALLS == []


# --------------------------------------------------------------------------- discriminators


async def test_discriminators_never_change_the_blocks_field_info(pilot: Pilot, alice: User) -> None:
    llm_before = dict(LlmLikeBlock.Input.credentials_fields())
    host_before = dict(HostRequestBlock.Input.credentials_fields())
    await add_api_key(pilot, alice.id, provider="anthropic")
    await add_host_scoped(pilot, alice.id, "api.example.com")
    await run_block(pilot, alice.id, LlmLikeBlock.id, {"prompt": "x", "model": "claude-sonnet-4-5"})
    await run_block(pilot, alice.id, HostRequestBlock.id, {"url": "https://api.example.com/v1"})
    await run_block(pilot, alice.id, HostRequestBlock.id, {"url": "https://other.example.org/"})
    assert LlmLikeBlock.Input.credentials_fields() == llm_before
    assert HostRequestBlock.Input.credentials_fields() == host_before
    info = LlmLikeBlock.Input.credentials_fields()["credentials"]
    assert info.provider == {"openai", "anthropic"}
    assert info.discriminator_values == frozenset()
    assert (
        HostRequestBlock.Input.credentials_fields()["credentials"].discriminator_values
        == frozenset()
    )


async def test_mapping_discriminator_from_input(pilot: Pilot, alice: User) -> None:
    anthropic = await add_api_key(pilot, alice.id, provider="anthropic", key="sk-ant-0123456789abc")
    data = await run_block(
        pilot, alice.id, LlmLikeBlock.id, {"prompt": "x", "model": "claude-sonnet-4-5"}
    )
    assert used(data) == (anthropic, "only_match")
    assert data["outputs"]["provider"] == ["anthropic"]
    # Only an Anthropic key, but a GPT model: the model's provider is asked for.
    data = await run_block(pilot, alice.id, LlmLikeBlock.id, {"prompt": "x", "model": "gpt-4o"})
    entry = missing_entry(data)
    assert (entry["provider"], entry["provider_name"], entry["type"]) == (
        "openai",
        "OpenAI",
        "api_key",
    )
    assert len(calls_of("LlmLikeBlock")) == 1


async def test_mapping_discriminator_falls_back_to_the_schema_default(
    pilot: Pilot, alice: User
) -> None:
    await add_api_key(pilot, alice.id, provider="anthropic", key="sk-ant-0123456789abc")
    # No model given: the default model (gpt-4o-mini) decides the provider.
    data = await run_block(pilot, alice.id, LlmLikeBlock.id, {"prompt": "x"})
    assert missing_entry(data)["provider"] == "openai"
    assert CALLS == []
    openai = await add_api_key(pilot, alice.id, provider="openai")
    data = await run_block(pilot, alice.id, LlmLikeBlock.id, {"prompt": "x"})
    assert used(data) == (openai, "only_match")
    assert data["outputs"]["provider"] == ["openai"]


async def test_mapping_discriminator_picks_the_right_key_among_providers(
    pilot: Pilot, alice: User
) -> None:
    openai = await add_api_key(pilot, alice.id, provider="openai")
    anthropic = await add_api_key(pilot, alice.id, provider="anthropic")
    data = await run_block(pilot, alice.id, LlmLikeBlock.id, {"prompt": "x", "model": "gpt-4o"})
    assert used(data)[0] == openai
    data = await run_block(
        pilot, alice.id, LlmLikeBlock.id, {"prompt": "x", "model": "claude-sonnet-4-5"}
    )
    assert used(data)[0] == anthropic
    # A requested key of the wrong provider for the model is missing, not used.
    data = await run_block(
        pilot,
        alice.id,
        LlmLikeBlock.id,
        {"prompt": "x", "model": "gpt-4o", "credentials": anthropic},
    )
    assert missing_entry(data)["provider"] == "openai"


# --------------------------------------------------------------------------- host-scoped


FITTING_HOSTS = [
    ("api.example.com", "https://api.example.com/v1/items?x=1"),
    ("API.Example.COM", "https://api.example.com"),
    ("http://API.Example.COM", "http://api.example.com"),
    ("*.example.com", "https://deep.api.example.com/"),
    ("*.example.com", "https://example.com/"),
    ("api.example.com:8443", "https://api.example.com:8443/x"),
    ("api.example.com", "https://api.example.com:443/x"),
    ("https://api.example.com", "https://api.example.com/x"),
    ("http://api.example.com", "https://api.example.com/x"),
]
NOT_FITTING_HOSTS = [
    ("api.example.com", "https://other.example.com/"),
    ("example.com", "https://api.example.com/"),
    ("example.com", "https://example.com.evil.com/"),
    ("*.example.com", "https://evilexample.com/"),
    ("*.example.com", "https://example.com.evil.com/"),
    ("example.com", "https://exаmple.com/"),  # Cyrillic 'а'
    ("api.example.com:8443", "https://api.example.com/"),
    ("api.example.com:8443", "https://api.example.com:9443/"),
    ("api.example.com", "https://api.example.com:8443/"),
    ("https://api.example.com", "http://api.example.com/"),
    ("api.example.com", "http://api.example.com/"),  # a bare host is its https site
    ("api.example.com", "https://user@api.example.com/"),
    ("api.example.com", "ftp://api.example.com/"),
    ("api.example.com", "not a url"),
    ("*.example.com", "https://evil.com\\.api.example.com/"),
]


async def test_host_scoped_credential_fits_the_url(pilot: Pilot) -> None:
    for i, (host, url) in enumerate(FITTING_HOSTS):
        user, _ = await pilot.users.create(f"fit{i}")  # one user per case: only that credential
        cred_id = await add_host_scoped(pilot, user.id, host)
        data = await run_block(pilot, user.id, HostRequestBlock.id, {"url": url})
        assert used(data) == (cred_id, "only_match"), (host, url)


async def test_host_scoped_credential_does_not_fit(pilot: Pilot) -> None:
    for i, (host, url) in enumerate(NOT_FITTING_HOSTS):
        user, _ = await pilot.users.create(f"nofit{i}")
        await add_host_scoped(pilot, user.id, host)
        data = await run_block(pilot, user.id, HostRequestBlock.id, {"url": url})
        entry = missing_entry(data)
        assert (entry["provider"], entry["type"], entry["types"]) == (
            "http", "host_scoped", ["host_scoped"],
        ), (host, url)  # fmt: skip
    assert CALLS == []


async def test_the_missing_entry_names_the_host_to_set_up(pilot: Pilot, alice: User) -> None:
    data = await run_block(
        pilot, alice.id, HostRequestBlock.id, {"url": "https://api.example.com:8443/x"}
    )
    assert missing_entry(data)["host"] == "api.example.com:8443"


async def test_the_credential_for_the_right_host_is_picked_among_several(
    pilot: Pilot, alice: User
) -> None:
    a = await add_host_scoped(pilot, alice.id, "a.example.com")
    b = await add_host_scoped(pilot, alice.id, "b.example.com")
    await add_host_scoped(pilot, alice.id, "c.example.com")
    data = await run_block(pilot, alice.id, HostRequestBlock.id, {"url": "https://a.example.com/"})
    assert used(data)[0] == a
    data = await run_block(pilot, alice.id, HostRequestBlock.id, {"url": "https://b.example.com/"})
    assert used(data)[0] == b
    # Requesting the credential of another host for this URL is "missing", not a substitute.
    data = await run_block(
        pilot, alice.id, HostRequestBlock.id, {"url": "https://a.example.com/", "credentials": b}
    )
    missing_entry(data)


async def test_no_url_in_preview_shows_any_host_scoped_credential_but_never_runs_with_it(
    pilot: Pilot, alice: User
) -> None:
    cred_id = await add_host_scoped(pilot, alice.id, "api.example.com")
    data = await run_block(pilot, alice.id, HostRequestBlock.id, {})
    assert data["type"] == "block_details"
    assert [c["id"] for c in data["block"]["credentials"]] == [cred_id]
    data = await run_block(
        pilot, alice.id, HostRequestBlock.id, {"url": "https://elsewhere.example.org/"}
    )
    missing_entry(data)
    assert CALLS == []


# --------------------------------------------------------------------------- provider, type, scopes


async def test_wrong_provider_or_type_is_missing(pilot: Pilot, alice: User) -> None:
    await add_api_key(pilot, alice.id, provider="anthropic")
    await add_oauth(pilot, alice.id, ["all"], provider="openai")
    await pilot.add_credentials(
        alice.id,
        {
            "provider": "openai",
            "type": "user_password",
            "username": "me",
            "password": "pw-0123456789",
        },
    )
    data = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "x"})
    assert missing_entry(data)["provider"] == "openai"
    assert CALLS == []


async def test_oauth_scopes_superset_fits_and_insufficient_is_missing(
    pilot: Pilot, alice: User
) -> None:
    await add_oauth(pilot, alice.id, ["read:user"])
    data = await run_block(pilot, alice.id, GithubScopedBlock.id, {"repo": "o/r"})
    entry = missing_entry(data)
    assert entry["scopes"] == ["repo"]
    assert (entry["provider"], entry["provider_name"], entry["type"]) == (
        "github",
        "GitHub",
        "oauth2",
    )
    wide = await add_oauth(pilot, alice.id, ["read:user", "repo", "workflow"])
    data = await run_block(pilot, alice.id, GithubScopedBlock.id, {"repo": "o/r"})
    assert used(data) == (wide, "only_match")


async def test_credential_needing_reauthorization_does_not_match(pilot: Pilot, alice: User) -> None:
    cred_id = await add_oauth(pilot, alice.id, ["repo"])
    await pilot.credential_store.mark_needs_reauthorization(alice.id, cred_id)
    data = await run_block(pilot, alice.id, GithubScopedBlock.id, {"repo": "o/r"})
    missing_entry(data)
    data = await run_block(
        pilot, alice.id, GithubScopedBlock.id, {"repo": "o/r", "credentials": cred_id}
    )
    missing_entry(data)
    assert CALLS == []


# --------------------------------------------------------------------------- explicit ids


async def test_requested_own_fitting_credential_is_used(pilot: Pilot, alice: User) -> None:
    first = await add_api_key(pilot, alice.id, key="sk-first-0123456789", is_default=True)
    second = await add_api_key(pilot, alice.id, key="sk-second-0123456789")
    data = await run_block(
        pilot,
        alice.id,
        ApiKeyEchoBlock.id,
        {"prompt": "x", "credentials": {"id": second, "provider": "openai", "type": "api_key"}},
    )
    assert used(data) == (second, "requested")
    assert received("ApiKeyEchoBlock").api_key.get_secret_value() == "sk-second-0123456789"
    assert first != second


async def test_requested_credential_of_another_user_is_missing_and_never_used(
    pilot: Pilot, alice: User, bob: User
) -> None:
    alices = await add_api_key(pilot, alice.id, key="sk-alice-secret-0123456789")
    await add_api_key(pilot, bob.id, key="sk-bob-secret-0123456789")
    for value in (alices, {"id": alices, "provider": "openai", "type": "api_key"}):
        data = await run_block(
            pilot, bob.id, ApiKeyEchoBlock.id, {"prompt": "x", "credentials": value}
        )
        missing_entry(data)  # not bob's own key either: never a silent substitute
    assert CALLS == []
    assert await pilot.executions.list(bob.id) == []


async def test_requested_own_credential_that_does_not_fit_is_missing(
    pilot: Pilot, alice: User
) -> None:
    await add_api_key(pilot, alice.id, provider="openai")
    anthropic = await add_api_key(pilot, alice.id, provider="anthropic")
    data = await run_block(
        pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "x", "credentials": anthropic}
    )
    missing_entry(data)
    data = await run_block(
        pilot,
        alice.id,
        ApiKeyEchoBlock.id,
        {"prompt": "x", "credentials": "00000000-0000-4000-8000-000000000000"},
    )
    missing_entry(data)
    assert CALLS == []


# --------------------------------------------------------------------------- several fit


async def test_several_fit_newest_then_most_recently_used_then_default(
    pilot: Pilot, alice: User
) -> None:
    older = await add_api_key(pilot, alice.id, key="sk-older-0123456789")
    newer = await add_api_key(pilot, alice.id, key="sk-newer-0123456789")
    data = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "x"})
    assert used(data) == (newer, "newest")
    # Using the older one explicitly makes it the most recently used.
    data = await run_block(
        pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "x", "credentials": older}
    )
    assert used(data) == (older, "requested")
    data = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "x"})
    assert used(data) == (older, "most_recently_used")
    # A default beats recency.
    await pilot.credential_store.set_default(alice.id, newer)
    data = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "x"})
    assert used(data) == (newer, "default")
    assert received("ApiKeyEchoBlock").api_key.get_secret_value() == "sk-newer-0123456789"


async def test_a_default_of_another_provider_does_not_count(pilot: Pilot, alice: User) -> None:
    await add_api_key(pilot, alice.id, provider="anthropic", is_default=True)
    await add_api_key(pilot, alice.id, key="sk-older-0123456789")
    newer = await add_api_key(pilot, alice.id, key="sk-newer-0123456789")
    data = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "x"})
    assert used(data) == (newer, "newest")


# --------------------------------------------------------------------------- system credentials


async def test_system_credentials_only_when_the_user_has_none(
    pilot_factory: Any, monkeypatch: pytest.MonkeyPatch, alice: User, bob: User
) -> None:
    monkeypatch.setenv("BLOCKPILOT_SYSTEM_OPENAI_API_KEY", "sk-platform-key-0123456789")
    p = await pilot_factory()
    data = await run_block(p, alice.id, ApiKeyEchoBlock.id, {"prompt": "x"})
    assert used(data) == (system_credential_id("openai"), "system")
    assert received("ApiKeyEchoBlock").api_key.get_secret_value() == "sk-platform-key-0123456789"
    own = await add_api_key(p, bob.id, key="sk-bob-own-0123456789")
    data = await run_block(p, bob.id, ApiKeyEchoBlock.id, {"prompt": "x"})
    assert used(data) == (own, "only_match")
    assert received("ApiKeyEchoBlock").api_key.get_secret_value() == "sk-bob-own-0123456789"
    # A system key for one provider does not satisfy another.
    data = await run_block(
        p, alice.id, LlmLikeBlock.id, {"prompt": "x", "model": "claude-sonnet-4-5"}
    )
    assert missing_entry(data)["provider"] == "anthropic"


async def test_an_expired_api_key_is_not_used(pilot: Pilot, alice: User) -> None:
    import time

    await add_api_key(
        pilot, alice.id, key="sk-expired-0123456789", expires_at=int(time.time()) - 10
    )
    data = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "x"})
    missing_entry(data)
    valid = await add_api_key(
        pilot, alice.id, key="sk-valid-0123456789", expires_at=int(time.time()) + 3600
    )
    data = await run_block(pilot, alice.id, ApiKeyEchoBlock.id, {"prompt": "x"})
    assert used(data) == (valid, "only_match")
