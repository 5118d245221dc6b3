"""Resource subscriptions: tell a client when a workspace file it subscribed to changes.

A connection of the 2025 protocol subscribes to ``workspace://<file id>`` URIs of its own
user (``resources/subscribe``); when such a file is rewritten or deleted, however that
happened (a block run, the HTTP API, another session), the connection gets
``notifications/resources/updated``. A connection that listed or subscribed to resources
also gets ``notifications/resources/list_changed`` when a file of its user's workspace is
created or deleted. Everything is keyed by the workspace of the user the connection
belongs to, so no notification ever names or hints at another user's file.

Changes are seen two ways (``docs/mcp.md#subscriptions``): at once, when they are made in
this process (:meth:`WorkspaceManager.watch`); and by looking at the subscribed files every
``poll_interval`` seconds, for changes made by another process (``serve --workers``,
another server on the same database).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio
from mcp.server import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from blockpilot.pilot import Pilot
from blockpilot.workspaces.manager import WorkspaceFiles
from blockpilot.workspaces.models import WorkspaceChange, WorkspaceFile

logger = logging.getLogger(__name__)

Context = ServerRequestContext[Any, Any]
Version = tuple[str, datetime]
"""What identifies one content of a file: its checksum and when it was written."""

POLL_SECONDS = 5.0
"""How often subscribed files are looked at for changes made by other processes."""
MAX_SUBSCRIPTIONS_PER_CONNECTION = 1000
SEND_TIMEOUT_SECONDS = 5.0


def version_of(record: WorkspaceFile) -> Version:
    return (record.checksum, record.updated_at)


@dataclass(eq=False)
class _Watcher:
    """One connection of one user: where its notifications go and what it subscribed to."""

    session: ServerSession
    """The session of a request on the connection: its notifications go on the connection's
    own stream (the GET stream over streamable HTTP), not on that request's."""
    files: WorkspaceFiles
    subscribed: dict[str, Version | None] = field(default_factory=dict)
    """file id -> the version last announced (None: the file is gone)."""


class ResourceSubscriptions:
    """The subscriptions of one MCP server; :meth:`run` delivers their notifications."""

    def __init__(self, pilot: Pilot, *, poll_interval: float = POLL_SECONDS) -> None:
        self.pilot = pilot
        self.poll_interval = poll_interval
        self._watchers: dict[str, dict[object, _Watcher]] = {}
        """workspace id -> connection -> its watcher"""
        self._pending: dict[str, bool] = {}
        """workspace id -> whether its file list changed, for changes not yet looked at"""
        self._wake = anyio.Event()

    # -- requests ---------------------------------------------------------------------------

    def watch_list(self, ctx: Context, files: WorkspaceFiles) -> None:
        """Note that this connection looks at its user's resources (it will hear of list
        changes). Connections of the 2026 protocol have no channel for that: ignored."""
        self._watcher(ctx, files)

    def subscribe(self, ctx: Context, files: WorkspaceFiles, record: WorkspaceFile) -> None:
        watcher = self._watcher(ctx, files)
        if watcher is None:
            return
        if (
            record.id not in watcher.subscribed
            and len(watcher.subscribed) >= MAX_SUBSCRIPTIONS_PER_CONNECTION
        ):
            raise MCPError(
                code=INVALID_PARAMS,
                message=(
                    f"Too many subscriptions on this connection (at most "
                    f"{MAX_SUBSCRIPTIONS_PER_CONNECTION}); unsubscribe from some first"
                ),
            )
        watcher.subscribed[record.id] = version_of(record)

    def unsubscribe(self, ctx: Context, files: WorkspaceFiles, file_id: str) -> None:
        watcher = self._watchers.get(files.workspace_id, {}).get(_connection(ctx))
        if watcher is not None:
            watcher.subscribed.pop(file_id, None)

    def _watcher(self, ctx: Context, files: WorkspaceFiles) -> _Watcher | None:
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return None  # no standalone stream to notify on (subscriptions/listen is not served)
        connection = _connection(ctx)
        of_workspace = self._watchers.setdefault(files.workspace_id, {})
        watcher = of_workspace.get(connection)
        if watcher is None:
            watcher = of_workspace[connection] = _Watcher(ctx.session, files)
            exit_stack = getattr(connection, "exit_stack", None)
            if exit_stack is not None:  # forgotten when the connection closes
                exit_stack.callback(self._forget, files.workspace_id, connection)
        return watcher

    def _forget(self, workspace_id: str, connection: object) -> None:
        of_workspace = self._watchers.get(workspace_id)
        if of_workspace is None:
            return
        of_workspace.pop(connection, None)
        if not of_workspace:
            del self._watchers[workspace_id]

    # -- changes ----------------------------------------------------------------------------

    def changed(self, change: WorkspaceChange) -> None:
        """A file changed in this process (called by the workspace manager)."""
        if change.workspace_id not in self._watchers:
            return
        listed = change.kind != "updated"
        self._pending[change.workspace_id] = self._pending.get(change.workspace_id, False) or listed
        self._wake.set()

    async def run(self) -> None:
        """Deliver notifications until cancelled (runs for the server's lifetime)."""
        stop_watching = self.pilot.workspaces.watch(self.changed)
        try:
            next_poll = anyio.current_time() + self.poll_interval
            while True:
                with anyio.move_on_after(max(next_poll - anyio.current_time(), 0)):
                    await self._wake.wait()
                self._wake = anyio.Event()
                due, self._pending = self._pending, {}
                if anyio.current_time() >= next_poll:
                    for workspace_id in self._watchers:
                        due.setdefault(workspace_id, False)
                    next_poll = anyio.current_time() + self.poll_interval
                for workspace_id, list_changed in due.items():
                    try:
                        await self._check(workspace_id, list_changed=list_changed)
                    except Exception:  # a failed look (database down) is retried at the next
                        logger.exception("Checking subscribed workspace files failed")
        finally:
            stop_watching()

    async def _check(self, workspace_id: str, *, list_changed: bool) -> None:
        """Notify the connections of *workspace_id* of what changed since they last heard."""
        now: dict[str, Version | None] = {}
        for watcher in list(self._watchers.get(workspace_id, {}).values()):
            for file_id, seen in list(watcher.subscribed.items()):
                if file_id not in now:
                    record = await watcher.files.info_by_id(file_id)
                    now[file_id] = None if record is None else version_of(record)
                if now[file_id] == seen:
                    continue
                if now[file_id] is None:
                    del watcher.subscribed[file_id]  # deleted: ids are never reused
                else:
                    watcher.subscribed[file_id] = now[file_id]
                await _send(watcher.session.send_resource_updated(f"workspace://{file_id}"))
            if list_changed:
                await _send(watcher.session.send_resource_list_changed())


def _connection(ctx: Context) -> object:
    """The connection *ctx* came on: what a subscription belongs to. The SDK's lowlevel
    context does not expose it, so it is read from the request's session (checked by
    ``tests/mcp/test_mcp_subscriptions.py`` against the installed SDK)."""
    connection = getattr(ctx.session, "_connection", None)
    if connection is None:  # an SDK that moved it: fail loudly rather than leak watchers
        raise RuntimeError("The MCP SDK's request session no longer names its connection")
    return connection


async def _send(notification: Awaitable[None]) -> None:
    with anyio.move_on_after(SEND_TIMEOUT_SECONDS):  # a stuck client does not hold up others
        try:
            await notification
        except Exception as exc:  # the client went away; nothing to tell
            logger.info("Resource notification not delivered: %s", type(exc).__name__)


__all__ = ["POLL_SECONDS", "ResourceSubscriptions"]
