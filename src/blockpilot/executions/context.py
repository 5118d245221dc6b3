"""The execution context every block run receives."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from blockpilot.credentials.models import OAuth2Credentials
    from blockpilot.net.client import GuardedHTTPClient
    from blockpilot.workspaces.files import WorkspaceFileAPI


class _Attached(NamedTuple):
    """What :meth:`ExecutionContext.attach` gives a run."""

    files: WorkspaceFileAPI | None
    http: GuardedHTTPClient | None
    provider_urls: Mapping[str, str]
    refresh: Callable[[OAuth2Credentials], Awaitable[OAuth2Credentials | None]] | None


_NOTHING_ATTACHED = _Attached(None, None, {}, None)


class ExecutionContext(BaseModel):
    """Who runs what, where: identity ids, workspace, session and run options.

    Outside graphs the graph ids are synthetic (see :class:`blockpilot.ids.SyntheticIds`).
    ``files`` and ``http`` give blocks the workspace file API and the guarded HTTP client;
    they are not part of the serialised form.
    """

    # What attach gives a run lives in a slot, not a pydantic private attribute: those are
    # set up for every instance, which was most of the cost of a run's context
    # (docs/performance.md). Copies keep it, as they kept the private attribute.
    __slots__ = ("_attached",)

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

    @classmethod
    def of(cls, fields: dict[str, Any]) -> ExecutionContext:
        """``ExecutionContext(**fields)``: the same validation by the model's own validator,
        without ``BaseModel.__init__`` around it (every run makes one; docs/performance.md)."""
        return cast(ExecutionContext, cls.__pydantic_validator__.validate_python(fields))

    def attach(
        self,
        *,
        files: WorkspaceFileAPI | None = None,
        http: GuardedHTTPClient | None = None,
        provider_urls: Mapping[str, str] | None = None,
        refresh: Callable[[OAuth2Credentials], Awaitable[OAuth2Credentials | None]] | None = None,
    ) -> ExecutionContext:
        """Give the run its workspace file API, guarded HTTP client and provider base URLs
        (and the refresh of an OAuth token the upstream refused)."""
        object.__setattr__(self, "_attached", _Attached(files, http, provider_urls or {}, refresh))
        return self

    @property
    def _tools(self) -> _Attached:
        attached: _Attached = getattr(self, "_attached", _NOTHING_ATTACHED)
        return attached

    def __copy__(self) -> ExecutionContext:
        copied = super().__copy__()
        if hasattr(self, "_attached"):
            object.__setattr__(copied, "_attached", self._attached)
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> ExecutionContext:
        copied = super().__deepcopy__(memo)
        if hasattr(self, "_attached"):  # the clients and the file API are shared, not copied
            object.__setattr__(copied, "_attached", self._attached)
        return copied

    async def refresh_rejected(self, creds: OAuth2Credentials) -> OAuth2Credentials | None:
        """New tokens for *creds*, which the upstream refused with a 401 (one refresh across
        processes, under the same lock as any refresh); None when they cannot be refreshed."""
        refresh = self._tools.refresh
        return None if refresh is None else await refresh(creds)

    def provider_base_url(self, provider: str) -> str | None:
        """The operator's ``BLOCKPILOT_PROVIDER_<NAME>_BASE_URL``, if set."""
        return self._tools.provider_urls.get(provider)

    @property
    def http(self) -> GuardedHTTPClient:
        """The SSRF-guarded HTTP client every block that makes requests must use."""
        http = self._tools.http
        if http is None:
            raise RuntimeError("This execution has no HTTP client attached")
        return http

    @property
    def files(self) -> WorkspaceFileAPI:
        files = self._tools.files
        if files is None:
            raise RuntimeError("This execution has no workspace attached")
        return files


__all__ = [
    "ExecutionContext",
]
