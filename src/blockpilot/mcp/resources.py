"""Workspace files as MCP resources: ``resources/list``, ``resources/read`` and
``resources/subscribe``/``unsubscribe`` (delivered by :mod:`blockpilot.mcp.subscriptions`).

Each file of the calling user's workspace is a resource ``workspace://<file id>`` (the same URI
the tools show, ``docs/mcp.md``). A user only ever lists and reads their own workspace: the
file id is looked up inside it, so another user's id is "not found". Text comes back as text;
anything else as base64.
"""

from __future__ import annotations

import base64
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    BlobResourceContents,
    EmptyResult,
    ListResourcesResult,
    PaginatedRequestParams,
    ReadResourceRequestParams,
    ReadResourceResult,
    Resource,
    SubscribeRequestParams,
    TextResourceContents,
    UnsubscribeRequestParams,
)

from blockpilot.errors import BlockpilotError
from blockpilot.mcp.subscriptions import ResourceSubscriptions
from blockpilot.pilot import Pilot
from blockpilot.workspaces.manager import WorkspaceFiles

Context = ServerRequestContext[Any, Any]

URI_SCHEME = "workspace://"
PAGE_SIZE = 200
_TEXT_TYPES = ("application/json", "application/xml", "application/yaml", "image/svg+xml")


class WorkspaceResources:
    """The resource handlers of the MCP server, for the user each request resolves to."""

    def __init__(
        self,
        pilot: Pilot,
        resolve_user: Any,
        subscriptions: ResourceSubscriptions | None = None,
    ) -> None:
        self.pilot = pilot
        self.resolve_user = resolve_user
        self.subscriptions = subscriptions or ResourceSubscriptions(pilot)
        self._delivering = False

    @asynccontextmanager
    async def delivering(self) -> AsyncIterator[None]:
        """Deliver subscription notifications while in this context (the server's life).

        The HTTP app runs the same server twice at once (one session manager per answer
        mode, ``mcp/response_modes.py``), entering and leaving both together: the first
        entry delivers for both (so a server run twice at once must not outlive its first
        run, or its notifications stop)."""
        if self._delivering:
            yield
            return
        self._delivering = True
        try:
            async with anyio.create_task_group() as background:
                background.start_soon(self.subscriptions.run)
                yield
                background.cancel_scope.cancel()
        finally:
            self._delivering = False

    async def _files(self, ctx: Context) -> WorkspaceFiles | None:
        user = self.resolve_user(ctx)
        if inspect.isawaitable(user):
            user = await user
        if not user:
            return None
        workspace = await self.pilot.workspaces.get_or_create_workspace(user)
        return self.pilot.workspaces.for_workspace(workspace)

    async def list_resources(
        self, ctx: Context, params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        files = await self._files(ctx)
        if files is None:  # not signed in: nothing to show
            return ListResourcesResult(resources=[])
        offset = _offset(params.cursor if params else None)
        self.subscriptions.watch_list(ctx, files)
        page = await files.list(limit=PAGE_SIZE + 1, offset=offset)
        more = len(page) > PAGE_SIZE
        return ListResourcesResult(
            resources=[
                Resource(
                    uri=f.uri,
                    name=f.path,
                    title=f.path.rsplit("/", 1)[-1],
                    mime_type=f.mime_type,
                    size=f.size_bytes,
                )
                for f in page[:PAGE_SIZE]
            ],
            next_cursor=str(offset + PAGE_SIZE) if more else None,
        )

    async def subscribe(self, ctx: Context, params: SubscribeRequestParams) -> EmptyResult:
        """Subscribe the connection to one of its user's files; any other URI (another
        user's file, one that does not exist, another scheme) is not found, as for a read."""
        uri = str(params.uri)
        file_id = _file_id(uri)
        files = await self._files(ctx)
        record = await files.info_by_id(file_id) if files is not None and file_id else None
        if files is None or record is None:
            raise _not_found(uri)
        self.subscriptions.subscribe(ctx, files, record)
        return EmptyResult()

    async def unsubscribe(self, ctx: Context, params: UnsubscribeRequestParams) -> EmptyResult:
        """Idempotent: unsubscribing from a URI not subscribed to is not an error."""
        file_id = _file_id(str(params.uri))
        files = await self._files(ctx)
        if files is not None and file_id:
            self.subscriptions.unsubscribe(ctx, files, file_id)
        return EmptyResult()

    async def read_resource(
        self, ctx: Context, params: ReadResourceRequestParams
    ) -> ReadResourceResult:
        uri = str(params.uri)
        if not _file_id(uri):
            raise _not_found(uri)
        files = await self._files(ctx)
        if files is None:
            raise _not_found(uri)
        try:
            record, data = await files.read_by_id(_file_id(uri))
        except BlockpilotError:  # not in this user's workspace (or unreadable)
            raise _not_found(uri) from None
        if _is_text(record.mime_type):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                return ReadResourceResult(
                    contents=[TextResourceContents(uri=uri, mime_type=record.mime_type, text=text)]
                )
        return ReadResourceResult(
            contents=[
                BlobResourceContents(
                    uri=uri,
                    mime_type=record.mime_type,
                    blob=base64.b64encode(data).decode("ascii"),
                )
            ]
        )


def _file_id(uri: str) -> str:
    """The file id of a ``workspace://`` URI ("" for any other URI)."""
    return uri[len(URI_SCHEME) :] if uri.startswith(URI_SCHEME) else ""


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise MCPError(code=INVALID_PARAMS, message="Invalid cursor; use a next_cursor given")
    return int(cursor)


def _is_text(mime_type: str) -> bool:
    return mime_type.startswith("text/") or mime_type in _TEXT_TYPES or mime_type.endswith("+json")


def _not_found(uri: str) -> MCPError:
    return MCPError(
        code=INVALID_PARAMS,
        message=f"Resource not found: {uri[:200]}",
        data={"uri": uri[:200]},
    )


__all__ = ["URI_SCHEME", "WorkspaceResources"]
