"""Response models of the HTTP API (what ``/openapi.json`` documents)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from blockpilot.credentials.models import CredentialsMeta
from blockpilot.tools.schemas import ToolFormat


class ErrorInfo(BaseModel):
    code: str = Field(
        description="Stable machine-readable code, e.g. `invalid_input` or `credential_not_found`."
    )
    message: str = Field(description="What went wrong and what to do next.")
    details: dict[str, Any] | None = Field(
        default=None, description="Structured data about the error, if any."
    )


class ErrorBody(BaseModel):
    """The body of every 4xx and 5xx response."""

    error: ErrorInfo


class Health(BaseModel):
    status: Literal["ok"] = Field(description="The process is up.")


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"] = Field(
        description="Whether the service can serve requests."
    )
    checks: dict[str, Literal["ok", "unreachable", "not_writable"]] = Field(
        description="Result of each dependency check: the database must answer a read and "
        "take a write (this process's lease)."
    )


class ToolList(BaseModel):
    format: ToolFormat = Field(description="The format the tools are given in.")
    tools: list[dict[str, Any]] = Field(
        description="Tool definitions, ready to hand to the model's API."
    )


class BlockSummary(BaseModel):
    id: str = Field(description="Stable block id (a UUID); what run_block takes.")
    name: str
    description: str
    categories: list[str]
    block_type: str
    disabled: bool = Field(description="Disabled by the block itself or by configuration.")
    excluded: bool = Field(description="Graph-only: cannot run in the copilot.")


class BlockList(BaseModel):
    blocks: list[BlockSummary]
    count: int


class CredentialsRequirement(BaseModel):
    field: str = Field(description="The credentials input's name.")
    providers: list[str]
    types: list[str]
    scopes: list[str] = Field(description="OAuth2 scopes the block needs.")
    discriminator: str | None = Field(
        default=None, description="Input that narrows the provider, if any."
    )


class BlockDetail(BlockSummary):
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    credentials: list[CredentialsRequirement]


class SessionInfo(BaseModel):
    session_id: str
    created_at: datetime


class SessionList(BaseModel):
    sessions: list[SessionInfo]


class CredentialList(BaseModel):
    credentials: list[CredentialsMeta] = Field(
        description="Metadata only; secrets never leave the service."
    )


class CredentialCheckResult(BaseModel):
    id: str = Field(description="The credential's id.")
    ok: bool | None = Field(
        description="Whether the provider accepted the credential; null when the provider "
        "has no live check."
    )
    status: int | None = Field(
        description="The provider's HTTP status, or null when no response came back."
    )
    message: str = Field(description="What happened; never holds a secret.")


class WorkspaceFileInfo(BaseModel):
    id: str
    path: str = Field(description="Virtual path in the workspace, e.g. `/notes/today.txt`.")
    uri: str = Field(description="The `workspace://<file id>` reference blocks use.")
    size_bytes: int
    checksum: str = Field(description="SHA-256 of the content, hex.")
    mime_type: str
    created_at: datetime
    updated_at: datetime


class WorkspaceFileList(BaseModel):
    prefix: str
    files: list[WorkspaceFileInfo]


class ExecutionInfo(BaseModel):
    id: str
    session_id: str
    block_id: str
    block_name: str
    status: str = Field(
        description="running, completed, failed, timed_out, cancelled or interrupted."
    )
    is_dry_run: bool
    started_at: datetime
    finished_at: datetime | None
    duration_ms: float | None
    input: dict[str, Any] = Field(description="The input, with secrets redacted.")
    output_summary: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    credential_ids: list[str]


class ExecutionList(BaseModel):
    executions: list[ExecutionInfo]
