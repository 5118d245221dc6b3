"""Pilot: blockpilot assembled — stores, registry, credentials, tools — behind one object."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from blockpilot.approvals.gate import ApprovalGate
from blockpilot.approvals.policy import operator_rules
from blockpilot.blocks.registry import BlockRegistry
from blockpilot.catalog import Catalog, CopilotExclusions
from blockpilot.credentials.crypto import CredentialCipher, KeyRing, load_or_create_key_file
from blockpilot.credentials.manager import IntegrationCredentialsManager, SystemCredentials
from blockpilot.credentials.models import (
    CredentialsMeta,
    UserPasswordCredentials,
)
from blockpilot.credentials.parsing import parse_credentials
from blockpilot.credentials.servers import SERVER_BOUND_PROVIDERS, ServerAddress
from blockpilot.errors import (
    BlockpilotError,
    ConfigurationError,
    CredentialNotFoundError,
    DecryptionError,
    EncryptionKeyError,
    InvalidInputError,
    NotFoundError,
    SessionNotFoundError,
    ToolNotFoundError,
    UserNotFoundError,
)
from blockpilot.executions.deadlines import deadline_in
from blockpilot.links import review_links, setup_links
from blockpilot.locks import InProcessLockManager, LockManager
from blockpilot.net.client import GuardedHTTPClient
from blockpilot.net.policy import DestinationPolicy
from blockpilot.oauth.providers import OAuthProvider
from blockpilot.redaction import SECRETS, install_log_redaction
from blockpilot.runner import BlockRunner, RunLimits
from blockpilot.settings import Settings
from blockpilot.sources.mcp.oauth import SourceOAuthClients
from blockpilot.sources.service import SourceService
from blockpilot.storage.credentials import CredentialStore
from blockpilot.storage.engine import create_engine, is_database_unavailable, migrate
from blockpilot.storage.executions import ExecutionStore
from blockpilot.storage.idempotency import IdempotencyStore
from blockpilot.storage.leases import ProcessIdentity, ProcessLeases
from blockpilot.storage.policies import PolicyStore
from blockpilot.storage.reviews import ReviewStore
from blockpilot.storage.sessions import ChatSession, SessionStore
from blockpilot.storage.sources import SourceStore
from blockpilot.storage.startup import (
    check_database,
    check_database_file,
    database_name,
    unusable_storage,
)
from blockpilot.storage.users import UserStore
from blockpilot.storage.workspace_blobs import open_blob_storage
from blockpilot.storage.workspaces import WorkspaceStore
from blockpilot.tools.base import BaseTool, ToolCall
from blockpilot.tools.continue_run_block import ContinueRunBlockTool
from blockpilot.tools.find_block import FindBlockTool
from blockpilot.tools.get_execution import GetExecutionTool
from blockpilot.tools.outcomes import answer_json
from blockpilot.tools.responses import ErrorResponse, NeedLoginResponse, ToolResponseBase
from blockpilot.tools.run_block import RunBlockTool
from blockpilot.tools.schemas import export_tools
from blockpilot.workspaces.manager import WorkspaceManager

logger = logging.getLogger(__name__)


def _keyring(settings: Settings) -> KeyRing:
    keys = [k.get_secret_value() for k in settings.encryption_keys]
    if not keys:
        keys = [load_or_create_key_file(settings.home / "encryption.key")]
    return KeyRing.from_strings(keys)


@dataclass(frozen=True, slots=True)
class PreparedCall:
    """A tool call whose tool, user and session are resolved (:meth:`Pilot.prepare_call`)."""

    tool: BaseTool
    call: ToolCall


class Pilot:
    """The whole runtime for one process. Create with :meth:`open`, end with :meth:`close`.

    Example::

        pilot = await Pilot.open()
        user, api_key = await pilot.users.create("alice")
        response = await pilot.call_tool("find_block", {"query": "email"}, user_id=user.id)
    """

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        cipher: CredentialCipher,
        *,
        registry: BlockRegistry | None = None,
        locks: LockManager | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.registry = registry or BlockRegistry(disabled=settings.disabled_blocks)
        try:
            exclusions = CopilotExclusions.from_names(
                settings.copilot_excluded_block_types, settings.copilot_excluded_block_ids
            )
        except KeyError as exc:
            raise ConfigurationError(
                f"BLOCKPILOT_COPILOT_EXCLUDED_BLOCK_TYPES names an unknown block type {exc}; "
                "use names such as INPUT, OUTPUT, WEBHOOK, NOTE, AGENT"
            ) from None
        self.catalog = Catalog(self.registry, exclusions)
        self.users = UserStore(engine)
        self.sessions = SessionStore(engine)
        self.executions = ExecutionStore(engine)
        self.cipher = cipher  # also encrypts OAuth state and keys the link signatures
        # The web pages verify links with these signers. Answers carry links only where the
        # pages are served, which BLOCKPILOT_PUBLIC_URL names (`blockpilot serve` sets it to
        # its own address), and then at every door alike (docs/oauth.md#where-links-point).
        self.setup_links = setup_links(settings, cipher)
        self.review_links = review_links(settings, cipher)
        served = settings.public_url is not None
        self.credential_store = CredentialStore(engine, cipher)
        self.credential_store.on_secrets = SECRETS.add
        system = SystemCredentials(settings.system_api_keys())
        SECRETS.add(system.secret_values())
        # Redis leases when several processes share the database (BLOCKPILOT_REDIS_URL).
        self.locks: LockManager = locks or _lock_manager(settings)
        self.credentials = IntegrationCredentialsManager(
            self.credential_store, self.locks, self.oauth_provider, system
        )
        # This process's lease: only the runs of processes whose lease is gone are interrupted.
        identity = ProcessIdentity.current()
        self.leases = ProcessLeases(engine, identity, settings.process_lease_seconds)
        self.executions.instance_id = self.leases.instance_id
        self._heartbeat: asyncio.Task[None] | None = None
        self.workspaces = WorkspaceManager(
            WorkspaceStore(engine),
            open_blob_storage(settings.effective_workspace_url, home=settings.home, engine=engine),
            max_file_bytes=settings.max_file_bytes,
            max_workspace_bytes=settings.max_workspace_bytes_per_user,
        )
        self.provider_urls = settings.provider_base_urls()
        try:
            rules = operator_rules(settings.policy_ask_effects, settings.policy_deny_effects)
        except InvalidInputError as exc:
            raise ConfigurationError(
                f"BLOCKPILOT_POLICY_ASK_EFFECTS / BLOCKPILOT_POLICY_DENY_EFFECTS: {exc.message}"
            ) from None
        self.policies = PolicyStore(engine)
        self.reviews = ReviewStore(engine)
        self.gate = ApprovalGate(
            self.policies,
            self.reviews,
            IdempotencyStore(engine, dead_after_seconds=2 * settings.process_lease_seconds),
            rules,
            review_ttl_seconds=settings.review_ttl_seconds,
            approval_url_builder=self.review_links.url if served else None,
        )
        self.http = GuardedHTTPClient(self._http_policy())
        # Imported sources of blocks (OpenAPI descriptions; docs/sources.md).
        self.sources = SourceService(
            SourceStore(engine),
            self.registry,
            self.http,
            oauth_clients=SourceOAuthClients(engine, self.cipher),
        )
        self.runner = BlockRunner(
            self.catalog,
            self.credentials,
            self.workspaces,
            self.executions,
            http=self.http,
            provider_urls=self.provider_urls,
            limits=RunLimits(
                block_timeout_seconds=settings.block_timeout_seconds,
                max_output_chars=settings.max_output_chars,
                max_input_bytes=settings.max_input_bytes,
            ),
            answer_json=answer_json,
            setup_url_builder=self.setup_links.url if served else None,
            gate=self.gate,
            instance_id=self.leases.instance_id,
            idempotency_wait_seconds=settings.idempotency_wait_seconds,
        )
        timeout = settings.tool_timeout_seconds
        self.tools: dict[str, BaseTool] = {
            tool.name: tool
            for tool in (
                FindBlockTool(self.catalog, timeout),
                RunBlockTool(self.runner, timeout),
                ContinueRunBlockTool(self.runner, timeout),
                GetExecutionTool(self.runner, timeout),
            )
        }

    @classmethod
    async def open(cls, settings: Settings | None = None, **kwargs: Any) -> Pilot:
        """Connect, migrate, check the encryption key and recover from a crash.

        Raises:
            StorageUnusableError: The database is damaged, or it or the data folder cannot
                be written (a full disk, a read-only file): see docs/storage.md.
        """
        install_log_redaction()
        settings = settings or Settings.load()
        try:
            return await cls._open(settings, **kwargs)
        except Exception as exc:
            unusable = unusable_storage(
                exc, database_name(settings.effective_database_url), settings.home
            )
            if unusable is None:
                raise
            raise unusable from None

    @classmethod
    async def _open(cls, settings: Settings, **kwargs: Any) -> Pilot:
        settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        cipher = CredentialCipher(_keyring(settings))
        check_database_file(settings.effective_database_url)
        engine = create_engine(settings.effective_database_url)
        try:
            await migrate(engine)
            await check_database(engine)
            pilot = cls(settings, engine, cipher, **kwargs)
            try:
                await pilot.credential_store.verify_readable()
            except DecryptionError:
                raise EncryptionKeyError(
                    "The encryption key cannot decrypt the stored credentials. "
                    "Set BLOCKPILOT_ENCRYPTION_KEYS to the key used before "
                    "(or 'new,old' while rotating); credentials were not touched."
                ) from None
            await pilot.sources.sync(force=True)
            await pilot.workspaces.start()
            await pilot.leases.renew()
            interrupted = await pilot.leases.interrupt_orphans()
            if interrupted:
                logger.warning("marked interrupted executions", extra={"count": interrupted})
            pilot._heartbeat = asyncio.get_running_loop().create_task(pilot._keep_lease())
            # The search index is built in a thread now, not by the first find_block.
            pilot.catalog.build_in_background()
        except BaseException:
            await engine.dispose()
            raise
        return pilot

    async def close(self) -> None:
        await self.catalog.aclose()  # a search index build under way stops
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        try:
            await self.executions.close()
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            # Shutting down while the database is unreachable: nothing to wait for.
            logger.error(
                "database unavailable at shutdown: unwritten run results read as interrupted"
            )
        self.users.close()
        self.policies.close()
        await self.sources.aclose()  # upstream MCP sessions end upstream too (DELETE, exit)
        await self.sessions.close()
        await self.credential_store.close()
        try:
            # What is still running now will never finish: say so, and free the lease at once.
            await self.leases.interrupt_own()
            await self.leases.release()
        except Exception as exc:  # noqa: BLE001 - the database may be down; the lease then expires
            logger.warning("could not release the process lease: %s", type(exc).__name__)
        await self.locks.aclose()
        await self.http.aclose()
        await self.engine.dispose()

    async def _keep_lease(self) -> None:
        """Renew this process's lease and interrupt the runs of processes that are gone."""
        lease = self.settings.process_lease_seconds
        failing = False
        sweep_after = 0.0
        while True:
            await asyncio.sleep(lease / 3)
            try:
                await self.leases.renew()
                if failing:
                    logger.info("process lease renewed again")
                    # Nobody could renew while the database was unreachable, so every lease
                    # may look expired now: give the other processes one lease time to renew
                    # before taking their runs for orphans.
                    sweep_after = time.monotonic() + lease
                    failing = False
                interrupted = 0
                if time.monotonic() >= sweep_after:
                    interrupted = await self.leases.interrupt_orphans()
            except Exception as exc:  # noqa: BLE001 - keep beating; the database may come back
                if not failing:
                    logger.warning("could not renew the process lease: %s", type(exc).__name__)
                failing = True
                continue
            if interrupted:
                logger.warning("marked interrupted executions", extra={"count": interrupted})

    async def __aenter__(self) -> Pilot:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _http_policy(self) -> DestinationPolicy:
        # Only BLOCKPILOT_HTTP_ALLOWED_HOSTS is exempt for every block. Operator-set provider
        # base URLs are exempt for that provider's blocks only (runner.trusted).
        return DestinationPolicy.from_host_list(self.settings.http_allowed_hosts)

    def oauth_provider(self, name: str) -> OAuthProvider | None:
        provider = OAuthProvider.from_settings(name, self.settings)
        if provider is None:
            # An imported API's oauth2 flow gives the endpoints (docs/sources.md).
            provider = self.sources.oauth_provider(name, self.settings)
        return provider

    # -- sessions and tools ---------------------------------------------------------------

    async def session_for(self, user_id: str, session_id: str | None) -> ChatSession:
        """The caller's session, or a new one; another user's session is 'not found'."""
        if session_id is None:
            try:
                return await self.sessions.create(user_id)
            except IntegrityError:  # the session row's user does not exist
                raise UserNotFoundError(f"User {str(user_id)[:80]!r} not found") from None
        if not isinstance(session_id, str):
            raise SessionNotFoundError(
                "Session not found: a session id is a string; omit it to start a new session"
            )
        session = await self.sessions.get(user_id, session_id)
        if session is None:
            raise SessionNotFoundError(
                f"Session {session_id[:80]!r} not found; omit it to start a new session"
            )
        return session

    def tool(self, name: Any) -> BaseTool:
        """The tool called *name*: the one place a tool name is looked up, for every door.

        Raises:
            ToolNotFoundError: No tool has that name; its details list the tools there are.
        """
        tool = self.tools.get(name) if isinstance(name, str) else None
        if tool is None:
            raise ToolNotFoundError(
                f"Tool {str(name)[:64]!r} not found; available tools: {', '.join(self.tools)}",
                details={"available_tools": list(self.tools)},
            )
        return tool

    async def prepare_call(
        self,
        name: Any,
        *,
        user_id: str | None,
        session_id: str | None = None,
        api_key_id: str | None = None,
    ) -> PreparedCall:
        """Which tool, for whom, in which chat session (created when *session_id* is None).

        Without a user no session is made: the tool itself answers ``need_login``.

        Raises:
            ToolNotFoundError: No tool is called *name*.
            SessionNotFoundError: *session_id* is not one of the user's sessions.
            UserNotFoundError: *user_id* names no user.
        """
        tool = self.tool(name)
        if user_id:
            session_id = (await self.session_for(user_id, session_id)).session_id
        return PreparedCall(
            tool, ToolCall(user_id=user_id, session_id=session_id, api_key_id=api_key_id)
        )

    async def run_call(self, prepared: PreparedCall, arguments: Any) -> ToolResponseBase:
        """Run a call from :meth:`prepare_call`; never raises for tool outcomes.

        The one place every tool call passes, whichever door it came through
        (docs/tools.md#what-every-tool-call-goes-through): no signed-in user (a user and
        their chat session, as :meth:`prepare_call` resolves them) is ``need_login`` and the
        body does not run; arguments that are not an object of the tool's declared names are
        ``invalid_arguments``; the body runs under the tool's time limit (``timeout``);
        anything unexpected is logged with its traceback and answered ``internal_error``.
        """
        tool, call = prepared.tool, prepared.call
        # Sign-in is checked here and only here (docs/architecture.md#where-sign-in-is-checked).
        if tool.requires_auth and (not call.user_id or call.session_id is None):
            return NeedLoginResponse(
                message=f"Please sign in to use {tool.name}", session_id=call.session_id
            )
        problem = _arguments_problem(tool, arguments)
        if problem is not None:
            return ErrorResponse(
                message=problem,
                error="invalid_arguments",
                code="invalid_arguments",
                session_id=call.session_id,
            )
        await self.sources.sync()  # a source added or refreshed by another process
        limit = tool.time_limit(arguments)
        deadline = deadline_in(limit)
        try:
            with deadline:
                response = await tool.run(call, **arguments)
        except TimeoutError:
            if not deadline.expired():  # raised inside the body: a failure, not our timeout
                response = _unexpected(tool, call)
            else:
                response = ErrorResponse(
                    message=f"{tool.name} timed out after {limit:g}s",
                    error="timeout",
                    code="timeout",
                    session_id=call.session_id,
                )
        except Exception:
            response = _unexpected(tool, call)
        # Final states are written behind in batches; commit them before anyone is told the
        # outcome, so a run reported as completed is never found 'interrupted' after a crash.
        await self.executions.flush()
        return response

    async def call_tool(
        self,
        name: str,
        arguments: Any,
        *,
        user_id: str | None,
        session_id: str | None = None,
        api_key_id: str | None = None,
    ) -> ToolResponseBase:
        """Run tool *name* exactly as the model would; never raises for tool outcomes.

        An unknown tool, session or user is an ``error`` response here; doors that answer
        those in their own protocol use :meth:`prepare_call` and :meth:`run_call`.
        *api_key_id* is the API key the call was authenticated with, if any: policy rules
        set for that key apply (docs/approvals.md).
        """
        try:
            prepared = await self.prepare_call(
                name, user_id=user_id, session_id=session_id, api_key_id=api_key_id
            )
        except ToolNotFoundError as exc:
            return ErrorResponse(
                message=exc.message, error=exc.code, code=exc.code, session_id=session_id
            )
        except NotFoundError as exc:
            return ErrorResponse(
                message=exc.message, error=exc.code, code=exc.code, session_id=None
            )
        return await self.run_call(prepared, arguments)

    def export_tools(self, fmt: str) -> list[dict[str, Any]]:
        return export_tools(self.tools.values(), fmt)

    # -- credentials ------------------------------------------------------------------------

    async def add_credentials(
        self, user_id: str, data: Any, *, is_default: bool = False
    ) -> CredentialsMeta:
        """Validate and store a credential given as a JSON object (docs/library.md#credentials)."""
        creds = parse_credentials(data)
        return await self.credential_store.add(user_id, creds, is_default=is_default)

    async def set_credential_host(self, user_id: str, cred_id: str, host: str) -> CredentialsMeta:
        """Bind a server-bound credential (SMTP) to its server, e.g. one stored before the
        binding existed (docs/security.md); the secret is re-encrypted with the host.

        Raises:
            CredentialNotFoundError: The user has no such credential.
            InvalidInputError: It is not a server-bound credential, or *host* is invalid.
        """
        creds = await self.credential_store.get(user_id, cred_id)
        if creds is None:
            raise CredentialNotFoundError(f"Credential {cred_id[:80]!r} not found")
        if not isinstance(creds, UserPasswordCredentials) or (
            creds.provider not in SERVER_BOUND_PROVIDERS
        ):
            raise InvalidInputError(
                f"Only {', '.join(sorted(SERVER_BOUND_PROVIDERS))} username/password "
                "credentials are bound to a server; this one is not"
            )
        server = ServerAddress.parse(host)
        await self.credential_store.update(user_id, creds.model_copy(update={"host": str(server)}))
        meta = await self.credential_store.get_meta(user_id, cred_id)
        if meta is None:  # deleted meanwhile
            raise CredentialNotFoundError(f"Credential {cred_id[:80]!r} not found")
        return meta


def _arguments_problem(tool: BaseTool, arguments: Any) -> str | None:
    """Why *arguments* cannot be passed to *tool*'s body: not an object, or unknown names."""
    if not isinstance(arguments, dict):
        return f"Arguments of {tool.name} must be a JSON object"
    declared = tool.parameters.get("properties", {})
    if arguments.keys() <= declared.keys():  # the usual case, told without building sets
        return None
    unknown = sorted(set(arguments) - set(declared), key=str)  # keys a library caller gave
    if unknown:
        return (
            f"Unknown argument(s) for {tool.name}: {', '.join(map(str, unknown))}. "
            f"Valid arguments: {', '.join(declared)}."
        )
    return None


def _unexpected(tool: BaseTool, call: ToolCall) -> ErrorResponse:
    """Log the exception being handled, with its traceback; answer generically."""
    logger.exception("tool failed unexpectedly", extra={"tool": tool.name})
    return ErrorResponse(
        message=f"An error occurred while executing {tool.name}",
        error="internal_error",
        code="internal_error",
        session_id=call.session_id,
    )


def _lock_manager(settings: Settings) -> LockManager:
    if not settings.redis_url:
        return InProcessLockManager()
    from blockpilot.redis_locks import RedisLockManager

    return RedisLockManager(settings.redis_url, lease_seconds=settings.lock_lease_seconds)


__all__ = ["BlockpilotError", "Pilot", "PreparedCall"]
