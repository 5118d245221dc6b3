"""Credentials fields: how a block declares which credentials it needs.

A block input annotated with :class:`CredentialsMetaInput` and declared with
:func:`CredentialsField` carries its requirements in the field's JSON-schema extras;
:class:`CredentialsFieldInfo` is the parsed, immutable form that matching works on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import Field

from blockpilot.credentials.models import CREDENTIAL_TYPES

_EXTRA_KEY = "credentials"


@dataclass(frozen=True, slots=True)
class CredentialsFieldInfo:
    """Requirements of one credentials field.

    Immutable on purpose: discriminating returns a new object, so resolving one run can
    never change the block's schema-level requirements (AutoGPT PR #12579's bug class).
    """

    provider: frozenset[str]
    supported_types: frozenset[str]
    required_scopes: frozenset[str] = frozenset()
    discriminator: str | None = None
    discriminator_mapping: Mapping[str, str] | None = None
    discriminator_values: frozenset[str] = field(default_factory=frozenset)
    # Server binding (SMTP): the inputs naming the server and its port, and the server the
    # run asked for ("host" or "host:port"; None when the input is empty: the credential's
    # own server is used). Only credentials bound to that server fit.
    server_input: str | None = None
    port_input: str | None = None
    server: str | None = None

    def discriminate(self, value: Any) -> CredentialsFieldInfo:
        """Narrow by the discriminator input's *value*.

        With a mapping, the provider set becomes the one mapped provider (an unmapped value
        leaves the providers as they are); without a mapping (URL discriminators) the value
        is only recorded, so host-scoped credentials are matched against it.
        """
        if self.discriminator is None or value is None:
            return self
        text = str(value)
        values = self.discriminator_values | {text}
        if self.discriminator_mapping is not None:
            mapped = self.discriminator_mapping.get(text)
            if mapped is None:
                return replace(self, discriminator_values=values)
            return replace(self, provider=frozenset({mapped}), discriminator_values=values)
        return replace(self, discriminator_values=values)

    def bind_server(self, host: Any, port: Any) -> CredentialsFieldInfo:
        """Record the server a run asks for (the values of the server and port inputs).

        An invalid host is recorded as given: no credential is bound to it, so the field
        stays missing (and the run's input validation names the problem).
        """
        if self.server_input is None or not isinstance(host, str) or not host.strip():
            return self
        from blockpilot.credentials.servers import ServerAddress  # noqa: PLC0415
        from blockpilot.errors import InvalidInputError  # noqa: PLC0415

        number = port if isinstance(port, int) and not isinstance(port, bool) else None
        try:
            server = str(ServerAddress.of(host, number))
        except InvalidInputError:
            server = host.strip()[:300]
        return replace(self, server=server)

    def to_schema_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {
            "credentials_provider": sorted(self.provider),
            "credentials_types": sorted(self.supported_types),
        }
        if self.required_scopes:
            extra["credentials_scopes"] = sorted(self.required_scopes)
        if self.discriminator:
            extra["discriminator"] = self.discriminator
        if self.discriminator_mapping is not None:
            extra["discriminator_mapping"] = dict(self.discriminator_mapping)
        if self.server_input:
            extra["credentials_server_input"] = self.server_input
        if self.port_input:
            extra["credentials_port_input"] = self.port_input
        return extra


def CredentialsField(  # noqa: N802 - reads like a type, as pydantic's Field does
    *,
    providers: Iterable[str],
    supported_types: Iterable[str],
    required_scopes: Iterable[str] = (),
    discriminator: str | None = None,
    discriminator_mapping: Mapping[str, str] | None = None,
    server_input: str | None = None,
    port_input: str | None = None,
    title: str | None = None,
    description: str = "Credentials to use",
) -> Any:
    """Declare a credentials input on a block's input schema.

    Args:
        providers: Providers whose credentials fit (e.g. ``["openai", "anthropic"]``).
        supported_types: Credential types that fit (``api_key``, ``oauth2``, ...).
        required_scopes: OAuth2 scopes the credential must hold.
        discriminator: Input field whose value narrows the provider (with a mapping) or
            names the URL the credential will be sent to (without one).
        discriminator_mapping: Discriminator value → provider.
        server_input: Input naming the server a username/password credential is sent to;
            only credentials bound to that server fit (see credentials.servers).
        port_input: Input naming that server's port.
    """
    info = CredentialsFieldInfo(
        provider=frozenset(providers),
        supported_types=frozenset(supported_types),
        required_scopes=frozenset(required_scopes),
        discriminator=discriminator,
        discriminator_mapping=dict(discriminator_mapping) if discriminator_mapping else None,
        server_input=server_input,
        port_input=port_input,
    )
    return Field(
        title=title,
        description=description,
        json_schema_extra={**info.to_schema_extra(), _EXTRA_KEY: True},
    )


def field_info_from_schema_extra(extra: Mapping[str, Any]) -> CredentialsFieldInfo | None:
    """Parse the extras written by :func:`CredentialsField`; ``None`` if not a credentials field."""
    if not extra.get(_EXTRA_KEY):
        return None
    mapping = extra.get("discriminator_mapping")
    return CredentialsFieldInfo(
        provider=frozenset(extra.get("credentials_provider", ())),
        supported_types=frozenset(extra.get("credentials_types", ())),
        required_scopes=frozenset(extra.get("credentials_scopes", ())),
        discriminator=extra.get("discriminator"),
        discriminator_mapping=dict(mapping) if mapping is not None else None,
        server_input=extra.get("credentials_server_input"),
        port_input=extra.get("credentials_port_input"),
    )


def field_info_problems(
    name: str, info: CredentialsFieldInfo, input_fields: Iterable[str]
) -> list[str]:
    """Load-time checks of one credentials field; an empty list means well formed."""
    problems: list[str] = []
    if not info.provider:
        problems.append(f"credentials field {name!r} names no provider")
    unknown = info.supported_types - set(CREDENTIAL_TYPES)
    if not info.supported_types or unknown:
        problems.append(f"credentials field {name!r} has unsupported types {sorted(unknown)}")
    if info.discriminator is not None and info.discriminator not in set(input_fields):
        problems.append(
            f"credentials field {name!r} discriminator {info.discriminator!r} is not an input"
        )
    for kind, input_name in (("server", info.server_input), ("port", info.port_input)):
        if input_name is not None and input_name not in set(input_fields):
            problems.append(
                f"credentials field {name!r} {kind} input {input_name!r} is not an input"
            )
    if len(info.provider) > 1 and not info.discriminator_mapping:
        problems.append(f"credentials field {name!r} has several providers but no mapping")
    if info.discriminator_mapping and not set(info.discriminator_mapping.values()) <= info.provider:
        problems.append(f"credentials field {name!r} maps to providers it does not list")
    return problems


__all__ = [
    "CredentialsField",
    "CredentialsFieldInfo",
]
