"""The four credential types, their public metadata, and the input model blocks declare."""

from __future__ import annotations

import base64
import time
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, field_validator

from blockpilot.credentials.hosts import HostPattern
from blockpilot.credentials.servers import ServerAddress, needs_server
from blockpilot.errors import InvalidInputError
from blockpilot.ids import new_id
from blockpilot.redaction import secret_parts

CredentialsType = Literal["api_key", "oauth2", "user_password", "host_scoped"]
# Unix seconds up to the year 9999: larger values would overflow the database's integers.
EpochSeconds = Annotated[int, Field(ge=0, le=253_402_300_799)]
CREDENTIAL_TYPES: tuple[str, ...] = ("api_key", "host_scoped", "oauth2", "user_password")


class CredentialsMeta(BaseModel):
    """What may be shown about a credential: never a secret."""

    model_config = ConfigDict(frozen=True)

    id: str
    provider: str
    type: CredentialsType
    title: str | None = None
    host: str | None = None
    scopes: list[str] | None = None
    expires_at: int | None = None
    is_default: bool = False
    is_system: bool = False
    needs_reauthorization: bool = False
    # A server-bound credential (SMTP) stored before the binding: used nowhere until the
    # person confirms its host (docs/security.md).
    needs_host: bool = False
    created_at: datetime | None = None
    last_used_at: datetime | None = None


class CredentialsMetaInput(BaseModel):
    """The value of a block's credentials input: which stored credential to use."""

    model_config = ConfigDict(extra="ignore")

    id: str
    provider: str
    type: CredentialsType
    title: str | None = None


class _CredentialsBase(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    id: str = Field(default_factory=new_id)
    provider: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    title: str | None = Field(default=None, max_length=200)

    def secret_values(self) -> list[str]:
        """Every secret string this credential carries (for scrubbing outputs and logs)."""
        raise NotImplementedError

    def auth_header(self) -> str | None:
        """The ``Authorization`` header value this credential implies, if any."""
        return None

    def meta(self, **extra: Any) -> CredentialsMeta:
        return CredentialsMeta(
            id=self.id,
            provider=self.provider,
            type=self.type,  # type: ignore[attr-defined]
            title=self.title,
            **extra,
        )


class APIKeyCredentials(_CredentialsBase):
    type: Literal["api_key"] = "api_key"
    api_key: SecretStr = Field(min_length=1, max_length=8192)
    expires_at: EpochSeconds | None = None

    def secret_values(self) -> list[str]:
        return [self.api_key.get_secret_value()]

    def auth_header(self) -> str:
        return f"Bearer {self.api_key.get_secret_value()}"

    def meta(self, **extra: Any) -> CredentialsMeta:
        return super().meta(expires_at=self.expires_at, **extra)


class OAuth2Credentials(_CredentialsBase):
    type: Literal["oauth2"] = "oauth2"
    username: str | None = None
    access_token: SecretStr = Field(min_length=1, max_length=16384)
    access_token_expires_at: EpochSeconds | None = None
    refresh_token: SecretStr | None = None
    refresh_token_expires_at: EpochSeconds | None = None
    scopes: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    def secret_values(self) -> list[str]:
        values = [self.access_token.get_secret_value()]
        if self.refresh_token is not None:
            values.append(self.refresh_token.get_secret_value())
        return values

    def auth_header(self) -> str:
        return f"Bearer {self.access_token.get_secret_value()}"

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        if self.access_token_expires_at is None:
            return False
        return self.access_token_expires_at - (now or time.time()) <= seconds

    def meta(self, **extra: Any) -> CredentialsMeta:
        return super().meta(
            scopes=sorted(self.scopes), expires_at=self.access_token_expires_at, **extra
        )


class UserPasswordCredentials(_CredentialsBase):
    type: Literal["user_password"] = "user_password"
    username: SecretStr = Field(min_length=1, max_length=1024)
    password: SecretStr = Field(min_length=1, max_length=8192)
    # The server (host or host:port) the credential may authenticate to; required for the
    # providers in credentials.servers.SERVER_BOUND_PROVIDERS (SMTP).
    host: str | None = Field(default=None, max_length=300)

    @field_validator("host")
    @classmethod
    def _valid_server(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ServerAddress.parse(value))
        except InvalidInputError as exc:
            raise ValueError(exc.message) from None

    @property
    def server(self) -> ServerAddress | None:
        return None if self.host is None else ServerAddress.parse(self.host)

    def secret_values(self) -> list[str]:
        username, password = self.username.get_secret_value(), self.password.get_secret_value()
        # Also the strings protocols encode whole, so a server echoing an AUTH PLAIN blob
        # (base64 of "\0user\0password") or a Basic header is redacted: their encoded
        # forms come from redaction.secret_forms. AUTH LOGIN sends each part on its own.
        return [username, password, f"\0{username}\0{password}", f"{username}:{password}"]

    def auth_header(self) -> str:
        raw = f"{self.username.get_secret_value()}:{self.password.get_secret_value()}"
        return "Basic " + base64.b64encode(raw.encode()).decode()

    def meta(self, **extra: Any) -> CredentialsMeta:
        return super().meta(
            host=self.host, needs_host=needs_server(self.provider, self.type, self.host), **extra
        )


class HostScopedCredentials(_CredentialsBase):
    type: Literal["host_scoped"] = "host_scoped"
    host: str = Field(min_length=1, max_length=300)
    headers: dict[str, SecretStr] = Field(min_length=1, max_length=50)

    @field_validator("host")
    @classmethod
    def _valid_host(cls, value: str) -> str:
        try:
            return str(HostPattern.parse(value))
        except InvalidInputError as exc:
            raise ValueError(exc.message) from None  # a ValidationError like every other field

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name in value:
            if not name or not all(ch.isalnum() or ch in "-_" for ch in name):
                raise ValueError(f"invalid header name {name!r}")
        return value

    @property
    def pattern(self) -> HostPattern:
        return HostPattern.parse(self.host)

    def matches_url(self, url: str) -> bool:
        return self.pattern.matches_url(url)

    def header_values(self) -> dict[str, str]:
        return {name: secret.get_secret_value() for name, secret in self.headers.items()}

    def secret_values(self) -> list[str]:
        values = [secret.get_secret_value() for secret in self.headers.values()]
        # "Bearer X" is stored whole; an upstream echoing X alone must be scrubbed too.
        return values + [part for value in values for part in secret_parts(value)]

    def auth_header(self) -> str | None:
        for name, secret in self.headers.items():
            if name.lower() == "authorization":
                return secret.get_secret_value()
        return None

    def meta(self, **extra: Any) -> CredentialsMeta:
        return super().meta(host=self.host, **extra)


def require_bound_server(creds: _CredentialsBase) -> None:
    """Refuse a new credential of a server-bound provider (SMTP) that names no server.

    Raises:
        InvalidInputError: It names none (stored rows from before the binding still load).
    """
    if isinstance(creds, UserPasswordCredentials) and needs_server(
        creds.provider, creds.type, creds.host
    ):
        raise InvalidInputError(
            f"A {creds.provider} credential needs the host of its server, e.g. "
            '"host": "smtp.example.com" or "smtp.example.com:587": the username and password '
            "are sent to that server only"
        )


Credentials = Annotated[
    APIKeyCredentials | OAuth2Credentials | UserPasswordCredentials | HostScopedCredentials,
    Field(discriminator="type"),
]
CredentialsAdapter: TypeAdapter[Credentials] = TypeAdapter(Credentials)

__all__ = [
    "CREDENTIAL_TYPES",
    "APIKeyCredentials",
    "Credentials",
    "CredentialsAdapter",
    "CredentialsMeta",
    "CredentialsMetaInput",
    "CredentialsType",
    "HostScopedCredentials",
    "OAuth2Credentials",
    "UserPasswordCredentials",
]
