"""What a block sees of its workspace: the file API, as a Protocol.

:class:`~blockpilot.workspaces.manager.WorkspaceFiles` implements it on the workspace store;
the execution context (a domain model, below the stores) is typed with this Protocol so it
needs nothing of the store (docs/architecture.md, Layers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from blockpilot.workspaces.models import WorkspaceFile

__all__ = ["WorkspaceFileAPI"]


class WorkspaceFileAPI(Protocol):
    """The file API of one workspace, as blocks use it through ``context.files``."""

    @property
    def workspace_id(self) -> str: ...

    async def write(
        self, path: str, content: bytes | str, *, mime_type: str | None = None
    ) -> WorkspaceFile:
        """Create or replace the file at *path* atomically."""
        ...

    async def write_stream(
        self, path: str, chunks: AsyncIterator[bytes], *, mime_type: str | None = None
    ) -> WorkspaceFile:
        """Like :meth:`write` for content that arrives in pieces."""
        ...

    async def info(self, path: str) -> WorkspaceFile: ...

    async def read(self, path: str) -> bytes: ...

    async def info_by_id(self, file_id: str) -> WorkspaceFile | None: ...

    async def read_by_id(self, file_id: str) -> tuple[WorkspaceFile, bytes]: ...

    async def open_verified(self, path: str) -> tuple[WorkspaceFile, AsyncIterator[bytes]]:
        """The file at *path* and its checksum-verified data as a stream of pieces."""
        ...

    async def delete(self, path: str) -> bool:
        """Delete the file at *path*; False if there is none."""
        ...

    # Last: the method named ``list`` would shadow the builtin in the annotations below it.
    async def list(
        self, prefix: str | None = None, *, limit: int = 1000, offset: int = 0
    ) -> list[WorkspaceFile]: ...
