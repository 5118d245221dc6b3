"""Configuration from the environment (prefix ``BLOCKPILOT_``), with sane defaults.

Comma-separated lists are accepted for every list setting. Provider-specific values
(``BLOCKPILOT_PROVIDER_<NAME>_BASE_URL``, ``..._CLIENT_ID``, ``..._CLIENT_SECRET`` and
``BLOCKPILOT_SYSTEM_<NAME>_API_KEY``) are read from the same environment on demand, so any
provider name works without declaring it here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from blockpilot.errors import ConfigurationError

ENV_PREFIX = "BLOCKPILOT_"

DEFAULT_EXCLUDED_BLOCK_TYPES: tuple[str, ...] = (
    "INPUT",
    "OUTPUT",
    "WEBHOOK",
    "WEBHOOK_MANUAL",
    "NOTE",
    "HUMAN_IN_THE_LOOP",
    "AGENT",
    "MCP_TOOL",
)
# The orchestrator discovers its tools from the graph layout, so it cannot run in a chat.
DEFAULT_EXCLUDED_BLOCK_IDS: tuple[str, ...] = ("3b191d9f-356f-482d-8238-ba04b6d18381",)

CommaList = Annotated[tuple[str, ...], NoDecode]
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "blockpilot"


class Settings(BaseSettings):
    """All blockpilot settings. Build with :meth:`Settings.load` to get typed errors."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    home: Path = Field(default_factory=_default_home, description="Data folder.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; default is a SQLite file in HOME."
    )
    redis_url: str | None = Field(
        default=None,
        description=(
            "redis://… shared by every server process: locks (OAuth refresh) and rate limits."
        ),
    )
    lock_lease_seconds: float = Field(
        default=30.0,
        ge=0.5,
        le=3_600,
        description="Lease of a Redis lock; renewed every third of it while held.",
    )
    process_lease_seconds: float = Field(
        default=30.0,
        ge=0.5,
        le=3_600,
        description="A process that has not renewed its lease for this long is dead: its running "
        "executions become interrupted.",
    )
    encryption_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    disabled_blocks: CommaList = ()
    copilot_excluded_block_ids: CommaList = DEFAULT_EXCLUDED_BLOCK_IDS
    copilot_excluded_block_types: CommaList = DEFAULT_EXCLUDED_BLOCK_TYPES
    http_allowed_hosts: CommaList = ()
    # Users (names or ids) whose API keys may manage sources over HTTP (docs/sources.md).
    admin_users: CommaList = ()
    # Whether admins may add stdio MCP servers (a command run on this host) over HTTP; the
    # CLI, run on the host itself, always may (docs/sources.md).
    sources_allow_commands: bool = False
    block_timeout_seconds: float = Field(default=120.0, gt=0, le=86_400)
    tool_timeout_seconds: float = Field(default=120.0, gt=0, le=86_400)
    max_output_chars: int = Field(default=80_000, ge=1_000)
    max_file_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    max_input_bytes: int = Field(default=1024 * 1024, ge=1_024)
    rate_limit_per_minute: int = Field(
        default=600,
        ge=0,
        le=1_000_000,
        description="Authenticated API requests per user per minute (token bucket); 0 = no limit.",
    )
    max_concurrent_runs_per_user: int = Field(
        default=8,
        ge=0,
        le=10_000,
        description="Tool calls (POST /api/v1/tools/*) one user may have in flight; 0 = no cap.",
    )
    max_workspace_bytes_per_user: int = Field(
        default=1024 * 1024 * 1024,
        ge=0,
        description="Bytes of files one user's workspace may hold in all; 0 = no quota "
        "(docs/configuration.md).",
    )
    workspace_url: str | None = Field(
        default=None,
        description="Where workspace files are kept: file: (the local folder HOME/workspaces), "
        "database: (chunked rows in the database) or s3://bucket/prefix (AWS_* variables); "
        "default database: on PostgreSQL, else file: (docs/workspaces.md).",
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3_600,
        description="A connection whose request line and headers have not all arrived this "
        "long after it opened (or after the next request began) is closed.",
    )
    policy_ask_effects: CommaList = Field(
        default=("destructive",),
        description="Effects (read, write, destructive) whose blocks need a person's approval "
        "before they run (docs/approvals.md).",
    )
    policy_deny_effects: CommaList = Field(
        default=(), description="Effects whose blocks never run (docs/approvals.md)."
    )
    review_ttl_seconds: int = Field(
        default=3600,
        ge=60,
        le=30 * 86_400,
        description="How long a review waits for a decision, and an approval for its run.",
    )
    idempotency_wait_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3_600,
        description="How long a call waits for an earlier call with the same idempotency key "
        "to finish before answering idempotency_in_progress.",
    )
    log_level: str = "INFO"
    public_url: str | None = Field(
        default=None,
        description="Where browsers reach this service (setup links, OAuth redirect URIs); "
        f"default {DEFAULT_PUBLIC_URL}.",
    )
    setup_link_ttl_seconds: int = Field(
        default=1800, ge=60, le=7 * 86_400, description="How long a setup link stays valid."
    )
    user_verifier_url: str | None = Field(
        default=None,
        description="The host application's page that confirms an OAuth connect for its "
        "signed-in user (POST /api/v1/oauth/verify); unset: the browser session a setup link "
        "opens confirms it (docs/oauth.md).",
    )
    mcp_max_sessions_per_user: int = Field(
        default=20,
        ge=0,
        le=10_000,
        description="Open MCP streamable-HTTP sessions one user may hold in one server process; "
        "0 = no cap (docs/mcp.md).",
    )
    mcp_session_idle_seconds: float = Field(
        default=600.0,
        gt=0,
        le=86_400,
        description="An MCP session with no request in flight for this long is closed "
        "(docs/mcp.md).",
    )
    mcp_allowed_hosts: CommaList = Field(
        default=(),
        description="Host headers /mcp accepts besides loopback names and public_url's host; "
        "'*' accepts any (docs/mcp.md).",
    )
    mcp_allowed_origins: CommaList = Field(
        default=(),
        description="Origin headers /mcp accepts besides loopback origins and public_url's; "
        "'*' accepts any; requests without Origin are always accepted (docs/mcp.md).",
    )

    @field_validator(
        "disabled_blocks",
        "copilot_excluded_block_ids",
        "copilot_excluded_block_types",
        "http_allowed_hosts",
        "mcp_allowed_hosts",
        "mcp_allowed_origins",
        "policy_ask_effects",
        "policy_deny_effects",
        mode="before",
    )
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return _split_commas(value)

    @field_validator("encryption_keys", mode="before")
    @classmethod
    def _key_list(cls, value: Any) -> Any:
        return _split_commas(value)

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        plain = parts.scheme in ("http", "https") and parts.hostname
        if not plain or parts.query or parts.fragment:
            raise ValueError("must be an http(s) URL such as https://blockpilot.example.com")
        return value

    @field_validator("user_verifier_url")
    @classmethod
    def _verifier_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
            raise ValueError("must be an http(s) URL such as https://app.example.com/verify")
        return value

    @field_validator("workspace_url")
    @classmethod
    def _workspace_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if value in ("file:", "database:"):
            return value
        parts = urlsplit(value)
        if parts.scheme == "s3" and parts.hostname and not (parts.query or parts.fragment):
            return value.rstrip("/")
        raise ValueError("must be file:, database: or s3://bucket/prefix")

    @field_validator("copilot_excluded_block_types")
    @classmethod
    def _upper_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.upper() for v in value)

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read the environment; raise :class:`ConfigurationError` naming the bad variable."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            problems = "; ".join(
                f"{ENV_PREFIX}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigurationError(f"Invalid configuration: {problems}") from None

    @property
    def effective_public_url(self) -> str:
        """``public_url`` if set, else :data:`DEFAULT_PUBLIC_URL` (no trailing slash)."""
        return self.public_url or DEFAULT_PUBLIC_URL

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.home / 'blockpilot.db'}"

    @property
    def effective_workspace_url(self) -> str:
        """``workspace_url`` if set; else ``database:`` on PostgreSQL, ``file:`` on SQLite."""
        if self.workspace_url:
            return self.workspace_url
        return "database:" if self.effective_database_url.startswith("postgres") else "file:"

    def provider_value(
        self, provider: str, key: str, env: Mapping[str, str] | None = None
    ) -> str | None:
        """``BLOCKPILOT_PROVIDER_<PROVIDER>_<KEY>`` from the environment, if set and non-empty."""
        source = os.environ if env is None else env
        name = f"{ENV_PREFIX}PROVIDER_{_env_name(provider)}_{key.upper()}"
        return source.get(name) or None

    def provider_base_urls(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """Every ``BLOCKPILOT_PROVIDER_<NAME>_BASE_URL`` set, by lower-case provider name."""
        source = os.environ if env is None else env
        prefix, suffix = f"{ENV_PREFIX}PROVIDER_", "_BASE_URL"
        urls: dict[str, str] = {}
        for name, value in source.items():
            if name.startswith(prefix) and name.endswith(suffix) and value:
                if not value.startswith(("http://", "https://")):
                    raise ConfigurationError(f"{name} must be an http(s) URL, got {value[:80]!r}")
                urls[name[len(prefix) : -len(suffix)].lower()] = value.rstrip("/")
        return urls

    def system_api_keys(self, env: Mapping[str, str] | None = None) -> dict[str, SecretStr]:
        """Operator-paid platform keys: ``BLOCKPILOT_SYSTEM_<PROVIDER>_API_KEY``."""
        source = os.environ if env is None else env
        prefix, suffix = f"{ENV_PREFIX}SYSTEM_", "_API_KEY"
        return {
            name[len(prefix) : -len(suffix)].lower(): SecretStr(value)
            for name, value in source.items()
            if name.startswith(prefix) and name.endswith(suffix) and value
        }


def _env_name(provider: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in provider).upper()
