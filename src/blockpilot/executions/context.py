"""The execution context every block run receives."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, PrivateAttr

if TYPE_CHECKING:
    from blockpilot.credentials.models import OAuth2Credentials
    from blockpilot.net.client import GuardedHTTPClient
    from blockpilot.workspaces.manager import WorkspaceFiles


class ExecutionContext(BaseModel):
    """Who runs what, where: identity ids, workspace, session and run options.

    Outside graphs the graph ids are synthetic (see :class:`blockpilot.ids.SyntheticIds`).
    ``files`` and ``http`` give blocks the workspace file API and the guarded HTTP client;
    they are not part of the serialised form.
    """

    model_config = ConfigDict(extra="ignore")

    user_id: str
    graph_id: str | None = None
    graph_exec_id: str | None = None
    graph_version: int | None = None
    node_id: str | None = None
    node_exec_id: str | None = None
    workspace_id: str | None = None
    session_id: str | None = None
    dry_run: bool = False
    user_timezone: str = "UTC"

    _files: WorkspaceFiles | None = PrivateAttr(default=None)
    _http: GuardedHTTPClient | None = PrivateAttr(default=None)
    _provider_urls: Mapping[str, str] = PrivateAttr(default_factory=dict)
    _refresh: Callable[[OAuth2Credentials], Awaitable[OAuth2Credentials | None]] | None = (
        PrivateAttr(default=None)
    )

    def attach(
        self,
        *,
        files: WorkspaceFiles | None = None,
        http: GuardedHTTPClient | None = None,
        provider_urls: Mapping[str, str] | None = None,
        refresh: Callable[[OAuth2Credentials], Awaitable[OAuth2Credentials | None]] | None = None,
    ) -> ExecutionContext:
        """Give the run its workspace file API, guarded HTTP client and provider base URLs
        (and the refresh of an OAuth token the upstream refused)."""
        self._files = files
        self._http = http
        self._provider_urls = provider_urls or {}
        self._refresh = refresh
        return self

    async def refresh_rejected(self, creds: OAuth2Credentials) -> OAuth2Credentials | None:
        """New tokens for *creds*, which the upstream refused with a 401 (one refresh across
        processes, under the same lock as any refresh); None when they cannot be refreshed."""
        return None if self._refresh is None else await self._refresh(creds)

    def provider_base_url(self, provider: str) -> str | None:
        """The operator's ``BLOCKPILOT_PROVIDER_<NAME>_BASE_URL``, if set."""
        return self._provider_urls.get(provider)

    @property
    def http(self) -> GuardedHTTPClient:
        """The SSRF-guarded HTTP client every block that makes requests must use."""
        if self._http is None:
            raise RuntimeError("This execution has no HTTP client attached")
        return self._http

    @property
    def files(self) -> WorkspaceFiles:
        if self._files is None:
            raise RuntimeError("This execution has no workspace attached")
        return self._files


__all__ = [
    "ExecutionContext",
]
