"""Workspace and workspace-file records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Workspace:
    id: str
    user_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WorkspaceFile:
    id: str
    workspace_id: str
    path: str
    size_bytes: int
    checksum: str
    mime_type: str
    created_at: datetime
    updated_at: datetime

    @property
    def uri(self) -> str:
        return f"workspace://{self.id}"

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "uri": self.uri,
            "size_bytes": self.size_bytes,
            "checksum": self.checksum,
            "mime_type": self.mime_type,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


ChangeKind = Literal["created", "updated", "deleted"]


@dataclass(frozen=True, slots=True)
class WorkspaceChange:
    """A file of a workspace was created, rewritten or deleted (in this process)."""

    workspace_id: str
    path: str
    kind: ChangeKind
