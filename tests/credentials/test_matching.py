"""Credential matching at unit level: field infos, discriminators, picking.

See docs/architecture.md#credential-resolution.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from blockpilot.credentials.fields import CredentialsFieldInfo
from blockpilot.credentials.matching import (
    build_missing_credentials_from_field_info,
    credential_fits,
    discriminated_requirements,
    match_credentials_to_requirements,
)
from blockpilot.credentials.models import CredentialsMeta

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def meta(provider: str = "openai", type_: str = "api_key", **extra: Any) -> CredentialsMeta:
    extra.setdefault("id", str(uuid.uuid4()))
    extra.setdefault("created_at", T0)
    return CredentialsMeta(provider=provider, type=type_, **extra)  # type: ignore[arg-type]


def field(
    providers: set[str] = frozenset({"openai"}),  # type: ignore[assignment]
    types: set[str] = frozenset({"api_key"}),  # type: ignore[assignment]
    **extra: Any,
) -> CredentialsFieldInfo:
    return CredentialsFieldInfo(
        provider=frozenset(providers), supported_types=frozenset(types), **extra
    )


LLM = field(
    {"openai", "anthropic", "ollama"},
    discriminator="model",
    discriminator_mapping={
        "gpt-4o-mini": "openai",
        "claude-sonnet-4-5": "anthropic",
        "llama3": "ollama",
    },
)
HTTP = field({"http"}, {"host_scoped"}, discriminator="url")
GITHUB = field({"github"}, {"oauth2"}, required_scopes=frozenset({"repo"}))


def match(
    candidates: list[CredentialsMeta],
    fields: dict[str, CredentialsFieldInfo],
    input_data: dict[str, Any] | None = None,
    *,
    for_execution: bool = True,
):  # type: ignore[no-untyped-def]  # noqa: E501
    return match_credentials_to_requirements(
        candidates, fields, input_data or {}, for_execution=for_execution
    )


# --------------------------------------------------------------------------- discriminate


def test_discriminate_with_mapping_narrows_the_provider_and_records_the_value() -> None:
    narrowed = LLM.discriminate("claude-sonnet-4-5")
    assert narrowed.provider == {"anthropic"}
    assert narrowed.discriminator_values == {"claude-sonnet-4-5"}
    # The original is untouched (a new object is returned).
    assert LLM.provider == {"openai", "anthropic", "ollama"}
    assert LLM.discriminator_values == frozenset()
    assert narrowed is not LLM


def test_discriminate_with_an_unmapped_value_keeps_the_providers() -> None:
    narrowed = LLM.discriminate("mystery-model")
    assert narrowed.provider == LLM.provider
    assert narrowed.discriminator_values == {"mystery-model"}


def test_discriminate_without_mapping_records_the_url_on_a_copy() -> None:
    narrowed = HTTP.discriminate("https://api.example.com/x")
    assert narrowed.discriminator_values == {"https://api.example.com/x"}
    assert narrowed.provider == {"http"} and narrowed.supported_types == {"host_scoped"}
    assert HTTP.discriminator_values == frozenset()


def test_discriminate_none_or_without_discriminator_is_identity() -> None:
    assert LLM.discriminate(None) is LLM
    plain = field()
    assert plain.discriminate("gpt-4o-mini") is plain


def test_field_info_is_immutable() -> None:
    with pytest.raises(AttributeError):
        HTTP.discriminator_values = frozenset({"x"})  # type: ignore[misc]


def test_discriminated_requirements_uses_input_then_schema_default() -> None:
    fields = {"credentials": LLM}
    from_input = discriminated_requirements(fields, {"model": "llama3"}, {"model": "gpt-4o-mini"})
    assert from_input["credentials"].provider == {"ollama"}
    from_default = discriminated_requirements(fields, {}, {"model": "gpt-4o-mini"})
    assert from_default["credentials"].provider == {"openai"}
    neither = discriminated_requirements(fields, {}, {})
    assert neither["credentials"] is LLM
    # A non-scalar discriminator value is ignored rather than stringified.
    odd = discriminated_requirements(fields, {"model": {"x": 1}}, {})
    assert odd["credentials"] is LLM
    assert fields["credentials"] is LLM


# --------------------------------------------------------------------------- fits


def test_provider_and_type_must_fit() -> None:
    info = field()
    assert credential_fits(meta(), info, for_execution=True)
    assert not credential_fits(meta("anthropic"), info, for_execution=True)
    assert not credential_fits(meta("openai", "oauth2", scopes=[]), info, for_execution=True)
    assert not credential_fits(meta("openai", "user_password"), info, for_execution=True)


def test_oauth_scopes_must_be_a_superset() -> None:
    assert credential_fits(meta("github", "oauth2", scopes=["repo"]), GITHUB, for_execution=True)
    assert credential_fits(
        meta("github", "oauth2", scopes=["repo", "user", "x"]), GITHUB, for_execution=True
    )
    assert not credential_fits(
        meta("github", "oauth2", scopes=["read:repo"]), GITHUB, for_execution=True
    )
    assert not credential_fits(meta("github", "oauth2", scopes=[]), GITHUB, for_execution=True)
    assert not credential_fits(meta("github", "oauth2", scopes=None), GITHUB, for_execution=True)
    no_scopes = field({"github"}, {"oauth2"})
    assert credential_fits(meta("github", "oauth2", scopes=[]), no_scopes, for_execution=True)


def test_needs_reauthorization_never_fits() -> None:
    stale = meta("github", "oauth2", scopes=["repo"], needs_reauthorization=True)
    assert not credential_fits(stale, GITHUB, for_execution=True)
    assert not credential_fits(stale, GITHUB, for_execution=False)


def test_host_scoped_fits_the_recorded_url_only() -> None:
    cred = meta("http", "host_scoped", host="api.example.com")
    assert credential_fits(cred, HTTP.discriminate("https://api.example.com/x"), for_execution=True)
    assert not credential_fits(
        cred, HTTP.discriminate("https://other.example.com/"), for_execution=True
    )
    assert not credential_fits(
        cred, HTTP.discriminate("https://api.example.com.evil.com/"), for_execution=True
    )


def test_host_scoped_without_url_fits_in_preview_only() -> None:
    cred = meta("http", "host_scoped", host="api.example.com")
    assert credential_fits(cred, HTTP, for_execution=False)
    assert not credential_fits(cred, HTTP, for_execution=True)


def test_host_scoped_with_a_broken_stored_host_never_fits() -> None:
    for host in (None, "", "bad host/"):
        cred = meta("http", "host_scoped", host=host)
        assert not credential_fits(
            cred, HTTP.discriminate("https://api.example.com/"), for_execution=True
        )


# --------------------------------------------------------------------------- match


def test_match_picks_one_per_field_and_reports_missing_with_the_exact_shape() -> None:
    openai = meta(title="Key")
    fields = {"credentials": field(), "github_credentials": GITHUB}
    result = match([openai], fields)
    assert result.matched == {"credentials": openai}
    assert result.missing == {
        "github_credentials": {
            "id": "github_credentials",
            "title": "Github Credentials",
            "provider": "github",
            "provider_name": "GitHub",
            "type": "oauth2",
            "types": ["oauth2"],
            "scopes": ["repo"],
        }
    }
    assert [(c.field, c.credential.id, c.reason) for c in result.choices] == [
        ("credentials", openai.id, "only_match")
    ]
    assert result.choices[0].public() == {
        "field": "credentials",
        "id": openai.id,
        "provider": "openai",
        "type": "api_key",
        "title": "Key",
        "reason": "only_match",
    }


def test_no_fields_nothing_to_resolve() -> None:
    result = match([meta()], {})
    assert result.matched == {} and result.missing == {} and result.choices == []


def test_empty_candidates_all_missing() -> None:
    result = match([], {"credentials": field()})
    assert list(result.missing) == ["credentials"]


def test_missing_entry_for_several_types_and_unknown_provider() -> None:
    info = CredentialsFieldInfo(
        provider=frozenset(), supported_types=frozenset({"oauth2", "api_key"})
    )
    (entry,) = build_missing_credentials_from_field_info({"my_service_credentials": info}).values()
    assert entry["provider"] == "unknown"
    assert entry["type"] == "api_key"
    assert entry["types"] == ["api_key", "oauth2"]
    assert entry["title"] == "My Service Credentials"
    info = CredentialsFieldInfo(provider=frozenset({"acme_corp"}), supported_types=frozenset())
    (entry,) = build_missing_credentials_from_field_info({"credentials": info}).values()
    assert entry["type"] == "api_key" and entry["types"] == []
    assert entry["provider_name"] == "Acme Corp"


def test_missing_entry_of_a_url_field_names_the_host() -> None:
    info = HTTP.discriminate("https://api.example.com:8443/path")
    (entry,) = build_missing_credentials_from_field_info({"credentials": info}).values()
    assert entry["host"] == "api.example.com:8443"
    (entry,) = build_missing_credentials_from_field_info(
        {"credentials": LLM.discriminate("gpt-4o-mini")}
    ).values()
    assert "host" not in entry and entry["provider"] == "openai"


def test_missing_skips_matched_keys() -> None:
    fields = {"a_credentials": field(), "b_credentials": GITHUB}
    assert list(build_missing_credentials_from_field_info(fields, ["a_credentials"])) == [
        "b_credentials"
    ]


# --------------------------------------------------------------------------- requested id


@pytest.mark.parametrize("form", ["bare", "dict", "padded"])
def test_requested_own_fitting_id_is_used(form: str) -> None:
    a, b = meta(), meta()
    value: Any = {
        "bare": b.id,
        "dict": {"id": b.id, "provider": "openai", "type": "api_key"},
        "padded": f" {b.id} ",
    }[form]
    result = match([a, b], {"credentials": field()}, {"credentials": value})
    assert result.matched["credentials"] is b
    assert result.choices[0].reason == "requested"


def test_requested_unknown_or_unfitting_id_is_missing_never_substituted() -> None:
    openai, anthropic = meta(), meta("anthropic")
    for requested in (anthropic.id, str(uuid.uuid4()), {"id": str(uuid.uuid4())}):
        result = match([openai, anthropic], {"credentials": field()}, {"credentials": requested})
        assert result.matched == {}
        assert list(result.missing) == ["credentials"]


def test_requested_host_scoped_for_another_host_is_missing() -> None:
    a = meta("http", "host_scoped", host="a.example.com")
    b = meta("http", "host_scoped", host="b.example.com")
    info = HTTP.discriminate("https://a.example.com/")
    assert match([a, b], {"credentials": info}, {"credentials": b.id}).matched == {}
    assert match([a, b], {"credentials": info}, {"credentials": a.id}).matched["credentials"] is a


def test_an_id_value_that_is_not_a_credential_reference_is_ignored() -> None:
    only = meta()
    for value in (None, "", "   ", 5, {"provider": "openai"}, {"id": 7}):
        result = match([only], {"credentials": field()}, {"credentials": value})
        assert result.matched["credentials"] is only, value


# --------------------------------------------------------------------------- several fit


def test_newest_wins_without_default_or_usage() -> None:
    old = meta(created_at=T0)
    new = meta(created_at=T0 + timedelta(seconds=1))
    result = match([old, new], {"credentials": field()})
    assert (result.matched["credentials"], result.choices[0].reason) == (new, "newest")
    result = match([new, old], {"credentials": field()})
    assert result.matched["credentials"] is new


def test_most_recently_used_beats_newest() -> None:
    old_used = meta(created_at=T0, last_used_at=T0 + timedelta(days=2))
    older_used = meta(created_at=T0, last_used_at=T0 + timedelta(days=1))
    newest = meta(created_at=T0 + timedelta(days=3))
    result = match([newest, older_used, old_used], {"credentials": field()})
    assert (result.matched["credentials"], result.choices[0].reason) == (
        old_used,
        "most_recently_used",
    )


def test_default_beats_recency() -> None:
    default = meta(created_at=T0, is_default=True)
    used = meta(created_at=T0, last_used_at=T0 + timedelta(days=2))
    newest = meta(created_at=T0 + timedelta(days=3))
    result = match([newest, used, default], {"credentials": field()})
    assert (result.matched["credentials"], result.choices[0].reason) == (default, "default")


def test_only_fitting_credentials_take_part_in_the_choice() -> None:
    default_other_provider = meta("anthropic", is_default=True)
    used_wrong_type = meta("openai", "oauth2", scopes=[], last_used_at=T0)
    only = meta()
    result = match([default_other_provider, used_wrong_type, only], {"credentials": field()})
    assert (result.matched["credentials"], result.choices[0].reason) == (only, "only_match")


def test_system_credentials_come_after_the_users_own() -> None:
    system = meta(is_system=True, id="sys")
    own = meta()
    result = match([system, own], {"credentials": field()})
    assert (result.matched["credentials"], result.choices[0].reason) == (own, "only_match")
    result = match([system], {"credentials": field()})
    assert (result.matched["credentials"], result.choices[0].reason) == (system, "system")
    # The user's own of another provider does not hide the system key of this one.
    result = match([meta("anthropic"), system], {"credentials": field()})
    assert result.matched["credentials"] is system


def test_mapping_discriminator_then_match() -> None:
    anthropic = meta("anthropic")
    fields = discriminated_requirements({"credentials": LLM}, {}, {"model": "gpt-4o-mini"})
    result = match([anthropic], fields)
    assert result.matched == {}
    assert result.missing["credentials"]["provider"] == "openai"
    fields = discriminated_requirements(
        {"credentials": LLM}, {"model": "claude-sonnet-4-5"}, {"model": "gpt-4o-mini"}
    )
    assert match([anthropic], fields).matched["credentials"] is anthropic


def test_an_expired_api_key_does_not_fit() -> None:
    # Regression: an API key past its expires_at was still picked (and failed with a 401)
    # even when the user had a valid one.
    now = int(datetime.now(UTC).timestamp())
    expired = meta(expires_at=now - 60, created_at=T0 + timedelta(days=1))
    valid = meta(expires_at=now + 3600)
    no_expiry = meta()
    assert not credential_fits(expired, field(), for_execution=True)
    assert credential_fits(valid, field(), for_execution=True)
    assert credential_fits(no_expiry, field(), for_execution=True)
    result = match([expired, valid], {"credentials": field()})
    assert result.matched["credentials"] is valid
    assert match([expired], {"credentials": field()}).matched == {}
    assert match([expired], {"credentials": field()}, {"credentials": expired.id}).matched == {}


def test_an_expiring_oauth_token_still_fits_it_gets_refreshed() -> None:
    now = int(datetime.now(UTC).timestamp())
    token = meta("github", "oauth2", scopes=["repo"], expires_at=now - 60)
    assert credential_fits(token, GITHUB, for_execution=True)
