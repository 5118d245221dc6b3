"""The MCP server: ``find_block`` and ``run_block`` for one signed-in user per request.

Built on the SDK's low-level :class:`mcp.server.Server` rather than ``MCPServer``'s
decorators: our tools are defined once (``pilot.tools``) with hand-written JSON Schemas,
and ``MCPServer`` would re-derive the schemas from a Python signature and answer an
unknown tool with an ``isError`` result instead of the protocol error the spec asks for.

Sessions: each MCP connection gets one blockpilot chat session, created on its first tool
call. A "connection" is one stdio process or in-process client, or one streamable-HTTP
session (``Mcp-Session-Id``); a client of the stateless 2026 protocol over HTTP, which has
no connection, keeps one session per user for the server's lifetime.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.server import NotificationOptions, Server, ServerRequestContext
from mcp.server.models import InitializationOptions
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    ElicitRequest,
    ElicitRequestURLParams,
    ElicitResult,
    InputRequiredResult,
    ListToolsResult,
    PaginatedRequestParams,
    Tool,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from blockpilot import __version__
from blockpilot.errors import NotFoundError, RateLimitedError, ToolNotFoundError
from blockpilot.mcp.resources import WorkspaceResources
from blockpilot.mcp.results import (
    SetupLink,
    internal_error_result,
    setup_links,
    tool_result,
)
from blockpilot.mcp.subscriptions import POLL_SECONDS, ResourceSubscriptions
from blockpilot.pilot import Pilot
from blockpilot.tools.responses import (
    ErrorResponse,
    ResponseType,
    SetupRequirementsResponse,
    ToolResponseBase,
)
from blockpilot.tools.schemas import export_tool

logger = logging.getLogger(__name__)

Context = ServerRequestContext[Any, Any]
UserResolver = Callable[[Context], "str | None | Awaitable[str | None]"]
"""Who is calling: the user id for this request, or None (the tools then answer need_login)."""
ApiKeyResolver = Callable[[Context], "str | None"]
"""Which of the user's API keys the request was made with (policy rules may narrow one key:
``docs/approvals.md``), or None."""

SERVER_NAME = "blockpilot"
INSTRUCTIONS = (
    "blockpilot runs integration blocks (e-mail, HTTP, LLM calls, GitHub, workspace files) for the "
    "signed-in user with their own connected accounts. Use find_block to search, then call "
    "run_block with the block's id and input_data {} to learn its inputs, then with the inputs. "
    "When a result says an account must be connected, show the user the setup link and wait."
)
ELICITATION_TIMEOUT_SECONDS = 300.0
PROGRESS_INTERVAL_SECONDS = 5.0
"""How often a tool call reports progress while it runs, to a client that sent a progress
token (``docs/mcp.md``)."""
_MAX_REMEMBERED_SESSIONS = 10_000


def fixed_user(user_id: str) -> UserResolver:
    """A resolver for a server that serves one user (stdio)."""

    def resolve(ctx: Context) -> str:
        return user_id

    return resolve


@dataclass
class ConversationState:
    """Per-connection state (one per ``Server.run``; shared by all sessions over HTTP)."""

    sessions: OrderedDict[tuple[str, ...], str] = field(default_factory=OrderedDict)
    lock: anyio.Lock = field(default_factory=anyio.Lock)

    async def session_id(self, pilot: Pilot, key: tuple[str, ...], user_id: str) -> str:
        """The blockpilot session of *key*, created (with the user's ownership) on first use."""
        session_id = self.sessions.get(key)
        if session_id is not None:
            self.sessions.move_to_end(key)
            return session_id
        async with self.lock:  # two first calls at once still make one session
            session_id = self.sessions.get(key)
            if session_id is not None:
                return session_id
            session_id = (await pilot.session_for(user_id, None)).session_id
            self.sessions[key] = session_id
            while len(self.sessions) > _MAX_REMEMBERED_SESSIONS:
                self.sessions.popitem(last=False)
            return session_id


def _conversations(
    resources: WorkspaceResources,
) -> Callable[[Server[Any]], AbstractAsyncContextManager[ConversationState]]:
    """The server's lifespan: the conversation state, with resource notifications
    delivered meanwhile (docs/mcp.md#subscriptions)."""

    @asynccontextmanager
    async def lifespan(server: Server[Any]) -> AsyncIterator[ConversationState]:
        async with resources.delivering():
            yield ConversationState()

    return lifespan


class _Server(Server[ConversationState]):
    """The SDK's server, announcing ``resources.listChanged`` to 2025-protocol clients (the
    SDK takes that flag only from options that its HTTP transport never passes)."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(resources_changed=True),
            experimental_capabilities,
            extensions,
        )


def _connection_key(ctx: Context, user_id: str) -> tuple[str, ...]:
    request = ctx.request
    headers = getattr(request, "headers", None)
    mcp_session = headers.get("mcp-session-id") if headers is not None else None
    if mcp_session:
        return ("http", user_id, mcp_session)
    return ("connection", user_id)


def _url_elicitation_supported(ctx: Context) -> bool:
    capabilities = ctx.session.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and elicitation.url is not None


def _elicitation_message(link: SetupLink, block_name: str) -> str:
    return f"Connect your {link.provider_name} account so that {block_name} can run."


ToolCallSlot = Callable[[str], AbstractAsyncContextManager[None]]
"""``(user_id) -> async context manager`` held around each tool call (a concurrency cap)."""


class BlockpilotMCP:
    """The request handlers of the MCP server, bound to one :class:`Pilot`."""

    def __init__(
        self,
        pilot: Pilot,
        user_resolver: UserResolver | str,
        *,
        elicitation_timeout: float = ELICITATION_TIMEOUT_SECONDS,
        tool_call_slot: ToolCallSlot | None = None,
        progress_interval: float = PROGRESS_INTERVAL_SECONDS,
        api_key_resolver: ApiKeyResolver | None = None,
    ) -> None:
        self.pilot = pilot
        self.resolve_api_key = api_key_resolver
        self.progress_interval = progress_interval
        self.resolve_user = (
            fixed_user(user_resolver) if isinstance(user_resolver, str) else user_resolver
        )
        self.elicitation_timeout = elicitation_timeout
        self.tool_call_slot = tool_call_slot

    def tools(self) -> list[Tool]:
        # One definition: GET /api/v1/tools?format=mcp returns the same (docs/mcp.md).
        return [Tool.model_validate(export_tool(tool, "mcp")) for tool in self.pilot.tools.values()]

    async def list_tools(
        self, ctx: Context, params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(tools=self.tools())

    async def call_tool(
        self, ctx: Context, params: CallToolRequestParams
    ) -> CallToolResult | InputRequiredResult:
        try:
            self.pilot.tool(params.name)
        except ToolNotFoundError as exc:  # a protocol error in MCP, not a tool result
            raise MCPError(
                code=INVALID_PARAMS,
                message=f"Unknown tool: {params.name[:100]}",
                data=exc.details,
            ) from None
        try:
            return await self._call(ctx, params)
        except MCPError:
            raise
        except Exception:  # the edge: one bad request never takes the server down
            logger.exception("MCP tool call failed unexpectedly", extra={"tool": params.name})
            return internal_error_result(params.name)

    async def _call(
        self, ctx: Context, params: CallToolRequestParams
    ) -> CallToolResult | InputRequiredResult:
        user_id = await self._user(ctx)
        session_id = None
        if user_id:
            state = ctx.lifespan_context
            try:
                session_id = await state.session_id(
                    self.pilot, _connection_key(ctx, user_id), user_id
                )
            except NotFoundError as exc:
                return tool_result(
                    ErrorResponse(message=exc.message, error=exc.code, code=exc.code)
                )
        arguments = params.arguments if params.arguments is not None else {}
        slot = self.tool_call_slot(user_id) if self.tool_call_slot and user_id else nullcontext()
        try:
            async with slot:
                response = await self._reporting_progress(
                    ctx,
                    params.name,
                    self.pilot.call_tool(
                        params.name,
                        arguments,
                        user_id=user_id,
                        session_id=session_id,
                        api_key_id=self.resolve_api_key(ctx) if self.resolve_api_key else None,
                    ),
                )
        except RateLimitedError as exc:  # too many tool calls of this user in flight
            return tool_result(ErrorResponse(message=exc.message, error=exc.code, code=exc.code))
        if response.type == ResponseType.SETUP_REQUIREMENTS.value:
            return await self._setup_required(ctx, params, response, user_hint=user_id or "USER")
        if response.type == ResponseType.REVIEW_REQUIRED.value:
            return await self._review_required(ctx, params, response)
        return tool_result(response)

    async def _reporting_progress(
        self, ctx: Context, tool: str, call: Awaitable[ToolResponseBase]
    ) -> ToolResponseBase:
        """Await *call*; meanwhile, if the client sent a progress token, tell it every
        ``progress_interval`` seconds that the call is still running (``docs/mcp.md``).

        Cancellation needs nothing here: on ``notifications/cancelled`` the SDK cancels this
        handler, and the runner records the run as ``cancelled``.
        """
        if _progress_token(ctx) is None:
            return await call
        started = anyio.current_time()

        async def report() -> None:
            step = 0
            while True:
                await anyio.sleep(self.progress_interval)
                step += 1
                elapsed = anyio.current_time() - started
                try:
                    await ctx.session.report_progress(
                        step, None, f"{tool} still running ({elapsed:.0f} s)"
                    )
                except Exception as exc:  # the client went away; the call goes on
                    logger.info("Progress not delivered: %s", type(exc).__name__)
                    return

        async with anyio.create_task_group() as reporting:
            reporting.start_soon(report)
            try:
                response = await call
            finally:
                reporting.cancel_scope.cancel()
        return response

    async def _user(self, ctx: Context) -> str | None:
        user = self.resolve_user(ctx)
        if inspect.isawaitable(user):
            user = await user
        return user or None

    async def _setup_required(
        self,
        ctx: Context,
        params: CallToolRequestParams,
        response: ToolResponseBase,
        *,
        user_hint: str,
    ) -> CallToolResult | InputRequiredResult:
        """Links in the text; and, where the client can show a URL, an elicitation."""
        data = response.model_dump(mode="json")
        block_name = str((data.get("setup_info") or {}).get("agent_name") or "the block")
        links = [link for link in setup_links(data) if link.url]
        if not links or not _url_elicitation_supported(ctx):
            return tool_result(response, user_hint=user_hint)
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            if params.input_responses is None:
                # 2026 protocol: ask the client to show the links, then retry the call.
                return InputRequiredResult(
                    input_requests={
                        f"connect-{link.field}": ElicitRequest(
                            params=ElicitRequestURLParams(
                                message=_elicitation_message(link, block_name), url=str(link.url)
                            )
                        )
                        for link in links
                    }
                )
            answers = [a for a in params.input_responses.values() if isinstance(a, ElicitResult)]
            return tool_result(
                _links_shown(response) if _all_accepted([a.action for a in answers]) else response,
                note=_outcome([a.action for a in answers]),
                user_hint=user_hint,
            )
        if not ctx.session.can_send_request:
            return tool_result(response, user_hint=user_hint)
        actions = [
            await self._elicit(ctx, _elicitation_message(link, block_name), str(link.url))
            for link in links
        ]
        delivered = [a for a in actions if a]
        return tool_result(
            _links_shown(response) if _all_accepted(actions) else response,
            note=_outcome(delivered),
            user_hint=user_hint,
        )

    async def _review_required(
        self, ctx: Context, params: CallToolRequestParams, response: ToolResponseBase
    ) -> CallToolResult | InputRequiredResult:
        """Where the client can show a URL, it shows the person the approval page (the model
        only learns that a review is pending; docs/approvals.md)."""
        data = response.model_dump(mode="json")
        url = data.get("approval_url")
        if not url or not _url_elicitation_supported(ctx):
            return tool_result(response)
        message = (
            f"Your copilot wants to run {data.get('block_name')} ({data.get('effect')}). "
            "Open the page to see exactly what it would do, and approve or reject it."
        )
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            if params.input_responses is None:
                return InputRequiredResult(
                    input_requests={
                        f"review-{data.get('review_id')}": ElicitRequest(
                            params=ElicitRequestURLParams(message=message, url=str(url))
                        )
                    }
                )
            return tool_result(response)
        if ctx.session.can_send_request:
            await self._elicit(ctx, message, str(url))
        return tool_result(response)

    async def _elicit(self, ctx: Context, message: str, url: str) -> str | None:
        """Send one URL elicitation and wait (bounded) for the user's answer."""
        with anyio.move_on_after(self.elicitation_timeout):
            try:
                result = await ctx.session.elicit_url(
                    message=message,
                    url=url,
                    elicitation_id=uuid.uuid4().hex,
                    related_request_id=ctx.request_id,
                )
            except Exception as exc:  # the links are in the result anyway
                logger.info("URL elicitation not delivered: %s", type(exc).__name__)
                return None
            return result.action
        return None


def _all_accepted(actions: Sequence[str | None]) -> bool:
    return bool(actions) and all(action == "accept" for action in actions)


def _links_shown(response: ToolResponseBase) -> ToolResponseBase:
    """The result for the model once the client showed the person the setup links: without
    them (a link opens the setup page for this user; docs/oauth.md)."""
    if isinstance(response, SetupRequirementsResponse):
        return response.without_setup_urls()
    return response


def _outcome(actions: list[str]) -> str | None:
    if not actions:
        return None
    if all(a == "accept" for a in actions):
        return "The user was shown the link and agreed to open it."
    if any(a == "decline" for a in actions):
        return "The user declined to open the link."
    return "The user dismissed the link."


def _progress_token(ctx: Context) -> str | int | None:
    meta: Any = ctx.meta
    if not meta:
        return None
    token = meta.get("progress_token", meta.get("progressToken"))
    return token if isinstance(token, (str, int)) and not isinstance(token, bool) else None


def build_mcp_server(
    pilot: Pilot,
    user_resolver: UserResolver | str,
    *,
    elicitation_timeout: float = ELICITATION_TIMEOUT_SECONDS,
    tool_call_slot: ToolCallSlot | None = None,
    progress_interval: float = PROGRESS_INTERVAL_SECONDS,
    api_key_resolver: ApiKeyResolver | None = None,
    resource_poll_interval: float = POLL_SECONDS,
) -> Server[ConversationState]:
    """The MCP server for *pilot*: tools ``find_block`` and ``run_block``.

    Args:
        pilot: An open :class:`Pilot`; the caller closes it.
        user_resolver: The user id to serve, or a callable ``(ctx) -> user_id | None``
            (sync or async) called per request.
        elicitation_timeout: How long a tool call waits for the user to answer a URL
            elicitation (2025 protocol) before returning the setup links anyway.
        tool_call_slot: Held around each tool call of a user (a concurrency cap); a
            :class:`~blockpilot.errors.RateLimitedError` on entry becomes an error result.
        progress_interval: Seconds between progress notifications of a running tool call
            whose request carried a progress token.
        api_key_resolver: ``(ctx) -> api_key_id | None``: the API key a request was made
            with, so that policy rules set for that key apply.
        resource_poll_interval: Seconds between looks at subscribed workspace files for
            changes made by other processes (this process's own are announced at once).

    Returns:
        A low-level ``mcp.server.Server``: serve it over stdio with :func:`serve_stdio`, over
        HTTP with :class:`blockpilot.mcp.http.MCPHttpApp`, or test it with ``mcp.Client(server)``.

    Example::

        server = build_mcp_server(pilot, user.id)
        async with mcp.Client(server) as client:
            result = await client.call_tool("find_block", {"query": "email"})
    """
    handlers = BlockpilotMCP(
        pilot,
        user_resolver,
        elicitation_timeout=elicitation_timeout,
        tool_call_slot=tool_call_slot,
        progress_interval=progress_interval,
        api_key_resolver=api_key_resolver,
    )
    # Workspace files as resources, with subscriptions (docs/mcp.md#resources).
    resources = WorkspaceResources(
        pilot,
        handlers.resolve_user,
        ResourceSubscriptions(pilot, poll_interval=resource_poll_interval),
    )
    server: Server[ConversationState] = _Server(
        SERVER_NAME,
        version=__version__,
        title="blockpilot",
        instructions=INSTRUCTIONS,
        lifespan=_conversations(resources),
        on_list_tools=handlers.list_tools,
        on_call_tool=handlers.call_tool,
        on_list_resources=resources.list_resources,
        on_read_resource=resources.read_resource,
        on_subscribe_resource=resources.subscribe,
        on_unsubscribe_resource=resources.unsubscribe,
    )
    return server


__all__ = [
    "ConversationState",
    "UserResolver",
    "build_mcp_server",
    "fixed_user",
]
