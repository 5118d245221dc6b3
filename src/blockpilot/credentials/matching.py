"""Matching a user's credentials to a block's credentials requirements.

The rules are in docs/architecture.md#credential-resolution.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from blockpilot.credentials.fields import CredentialsFieldInfo
from blockpilot.credentials.hosts import HostPattern
from blockpilot.credentials.models import CredentialsMeta
from blockpilot.credentials.servers import SERVER_BOUND_PROVIDERS, ServerAddress
from blockpilot.errors import InvalidInputError
from blockpilot.provider_facts import provider_facts

_EPOCH = datetime.fromtimestamp(0, UTC)


def provider_display_name(provider: str) -> str:
    """How people write *provider* (``GitHub``), from the provider facts."""
    return provider_facts(provider).display_name


@dataclass(frozen=True, slots=True)
class CredentialChoice:
    """Which credential was picked for a field, and why (reported to the caller)."""

    field: str
    credential: CredentialsMeta
    reason: str  # requested | only_match | default | most_recently_used | newest | system

    def public(self) -> dict[str, Any]:
        c = self.credential
        return {
            "field": self.field,
            "id": c.id,
            "provider": c.provider,
            "type": c.type,
            "title": c.title,
            "reason": self.reason,
        }


@dataclass(slots=True)
class CredentialsMatch:
    matched: dict[str, CredentialsMeta] = field(default_factory=dict)
    missing: dict[str, dict[str, Any]] = field(default_factory=dict)
    choices: list[CredentialChoice] = field(default_factory=list)


def _host_fits(meta: CredentialsMeta, info: CredentialsFieldInfo, *, for_execution: bool) -> bool:
    if not info.discriminator_values:
        # No URL known: acceptable for a schema preview, never for a real request.
        return not for_execution
    try:
        pattern = HostPattern.parse(meta.host or "")
    except InvalidInputError:
        return False
    return all(pattern.matches_url(url) for url in info.discriminator_values)


def credential_fits(
    meta: CredentialsMeta, info: CredentialsFieldInfo, *, for_execution: bool
) -> bool:
    """Provider, type, usability, scopes and host all fit the requirement."""
    if meta.provider not in info.provider or meta.type not in info.supported_types:
        return False
    if meta.needs_reauthorization:
        return False
    if meta.type == "api_key" and meta.expires_at is not None and meta.expires_at <= time.time():
        return False  # an expired key only earns a 401 (OAuth2 tokens are refreshed instead)
    if meta.type == "oauth2" and not info.required_scopes <= set(meta.scopes or ()):
        return False
    if meta.type == "host_scoped":
        return _host_fits(meta, info, for_execution=for_execution)
    if meta.provider in SERVER_BOUND_PROVIDERS and meta.type == "user_password":
        return _server_fits(meta, info)
    return True


def _server_fits(meta: CredentialsMeta, info: CredentialsFieldInfo) -> bool:
    """A server-bound credential fits only a run on its own server (docs/security.md)."""
    if not meta.host or meta.needs_host or info.server_input is None:
        return False  # no host confirmed yet, or a block that cannot say where it sends it
    if info.server is None:
        return True  # the run uses the credential's own server
    try:
        return ServerAddress.parse(meta.host).admits(ServerAddress.parse(info.server))
    except InvalidInputError:
        return False


def _requested_id(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _pick(fits: list[CredentialsMeta]) -> tuple[CredentialsMeta, str]:
    own = [m for m in fits if not m.is_system]
    if not own:
        return fits[0], "system"
    if len(own) == 1:
        return own[0], "only_match"
    defaults = [m for m in own if m.is_default]
    if defaults:
        return defaults[0], "default"
    used = [m for m in own if m.last_used_at is not None]
    if used:
        return max(used, key=lambda m: m.last_used_at or _EPOCH), "most_recently_used"
    return max(own, key=lambda m: m.created_at or _EPOCH), "newest"


def match_credentials_to_requirements(
    candidates: list[CredentialsMeta],
    requirements: Mapping[str, CredentialsFieldInfo],
    input_data: Mapping[str, Any],
    *,
    for_execution: bool,
) -> CredentialsMatch:
    """Pick a credential per field from *candidates* (the user's own, then system ones).

    A credential id named in ``input_data[field]`` is used only if it is among this
    user's candidates and fits; otherwise the field is missing — never another user's
    credential, never a silent substitute.
    """
    result = CredentialsMatch()
    for name, info in requirements.items():
        requested = _requested_id(input_data.get(name))
        if requested is not None:
            chosen = next(
                (
                    m
                    for m in candidates
                    if m.id == requested and credential_fits(m, info, for_execution=for_execution)
                ),
                None,
            )
            if chosen is not None:
                result.matched[name] = chosen
                result.choices.append(CredentialChoice(name, chosen, "requested"))
            continue
        fits = [m for m in candidates if credential_fits(m, info, for_execution=for_execution)]
        if fits:
            chosen, reason = _pick(fits)
            result.matched[name] = chosen
            result.choices.append(CredentialChoice(name, chosen, reason))
    result.missing = build_missing_credentials_from_field_info(requirements, result.matched.keys())
    return result


def build_missing_credentials_from_field_info(
    fields: Mapping[str, CredentialsFieldInfo], matched_keys: Any = ()
) -> dict[str, dict[str, Any]]:
    """Setup entries for every field not in *matched_keys* (credential resolution, step 4)."""
    matched = set(matched_keys)
    missing: dict[str, dict[str, Any]] = {}
    for name, info in fields.items():
        if name in matched:
            continue
        providers = sorted(info.provider)
        provider = providers[0] if providers else "unknown"
        types = sorted(info.supported_types)
        entry: dict[str, Any] = {
            "id": name,
            "title": name.replace("_", " ").title(),
            "provider": provider,
            "provider_name": provider_display_name(provider),
            "type": types[0] if types else "api_key",
            "types": types,
            "scopes": sorted(info.required_scopes),
        }
        if info.discriminator_values and info.discriminator_mapping is None:
            entry["host"] = _first_host(info.discriminator_values)
        if info.server is not None:
            entry["host"] = info.server  # the server the run named: store a credential for it
        missing[name] = entry
    return missing


def _first_host(urls: frozenset[str]) -> str | None:
    for url in sorted(urls):
        try:
            parts = urlsplit(url)
            if parts.hostname:
                if parts.port:
                    return f"{parts.hostname}:{parts.port}"
                # A bare host pattern means https only; say "http://" where the run uses it.
                return (
                    f"http://{parts.hostname}" if parts.scheme.lower() == "http" else parts.hostname
                )
        except ValueError:
            continue
    return None


def discriminated_requirements(
    fields: Mapping[str, CredentialsFieldInfo],
    input_data: Mapping[str, Any],
    defaults: Mapping[str, Any],
) -> dict[str, CredentialsFieldInfo]:
    """Apply each field's discriminator, from ``input_data`` else the schema default."""
    resolved: dict[str, CredentialsFieldInfo] = {}
    for name, info in fields.items():
        if info.server_input is not None:
            info = info.bind_server(
                input_data.get(info.server_input, defaults.get(info.server_input)),
                input_data.get(info.port_input, defaults.get(info.port_input))
                if info.port_input
                else None,
            )
        if info.discriminator is None:
            resolved[name] = info
            continue
        value = input_data.get(info.discriminator, defaults.get(info.discriminator))
        resolved[name] = info.discriminate(value) if isinstance(value, str | int | float) else info
    return resolved
