"""Managing sources (add, refresh, remove) and keeping every process's catalogue current.

Each process holds the blocks of every stored source in its registry. :meth:`SourceService.sync`
compares the stored versions (one small query, at most once per ``check_seconds``) and
rebuilds only the sources that changed, so a refresh anywhere reaches everyone
(docs/sources.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from blockpilot.blocks.base import Block
from blockpilot.blocks.registry import BlockLoadProblem, BlockRegistry
from blockpilot.errors import InvalidInputError
from blockpilot.net.client import GuardedHTTPClient
from blockpilot.oauth.providers import OAuthProvider
from blockpilot.settings import Settings
from blockpilot.sources.base import (
    ParsedSource,
    SourceOptions,
    check_source_name,
    source_kind,
)
from blockpilot.sources.mcp._pools import current_pool
from blockpilot.sources.openapi._document import MAX_SPEC_BYTES
from blockpilot.storage.sources import SourceRecord, SourceStore

if TYPE_CHECKING:
    from blockpilot.sources.mcp.oauth import SourceOAuthClients

logger = logging.getLogger(__name__)

DEFAULT_CHECK_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class SourceResult:
    """What ``add`` and ``refresh`` report."""

    record: SourceRecord
    parsed: ParsedSource

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.record.name,
            "kind": self.record.kind,
            "blocks": self.parsed.blocks,
            "skipped": [s.to_dict() for s in self.parsed.skipped],
        }


class SourceService:
    """The stored sources of blocks and this process's view of them."""

    def __init__(
        self,
        store: SourceStore,
        registry: BlockRegistry,
        http: GuardedHTTPClient,
        *,
        check_seconds: float = DEFAULT_CHECK_SECONDS,
        oauth_clients: SourceOAuthClients | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.http = http
        self.check_seconds = check_seconds
        # The OAuth clients of MCP sources with --auth oauth (sources/mcp/oauth.py).
        self.oauth_clients = oauth_clients
        self._ids: dict[str, str] = {}
        self._versions: dict[str, str] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._checked = float("-inf")
        self._lock = asyncio.Lock()

    # -- keeping the catalogue current -----------------------------------------------------

    async def sync(self, *, force: bool = False) -> None:
        """Rebuild the blocks of sources added, refreshed or removed since the last check
        (and first list again the tools of MCP servers that said theirs changed)."""
        if self._versions:  # with no source there is no MCP server to ask (docs/sources.md)
            await self._refresh_changed_mcp()
        if not force and time.monotonic() - self._checked < self.check_seconds:
            return
        if not force and self._lock.locked():
            # Another call of this process is checking now: this one runs with the catalogue
            # as the last check left it, as if it had come a moment earlier. Waiting would
            # queue every call of a burst behind one read (docs/sources.md#loading-and-start-up).
            return
        async with self._lock:
            if not force and time.monotonic() - self._checked < self.check_seconds:
                return
            versions = await self.store.versions()
            self._checked = time.monotonic()
            changed = [n for n, v in versions.items() if self._versions.get(n) != v]
            removed = [n for n in self._versions if n not in versions]
            for name in removed:
                self._configs.pop(name, None)
                del self._versions[name]
            replaced: dict[str, Sequence[Block]] = {}
            loaded = await self.store.load(changed)
            await self._load_oauth_clients(loaded)
            for record in loaded:
                blocks = self._build(record)
                if blocks is None:
                    removed.append(record.name)
                else:
                    replaced[record.name] = blocks
                self._versions[record.name] = versions[record.name]
            # One merge for every change: hundreds of sources at start-up cost one pass.
            self.registry.update_sources(replaced, removed)

    async def _refresh_changed_mcp(self) -> None:
        pool = current_pool()
        if pool is None:
            return
        for name, relist in pool.take_changed().items():
            try:
                record = await self.store.get(name)
                if record.kind != "mcp":
                    continue
                from blockpilot.sources.mcp._transports import Endpoint
                from blockpilot.sources.mcp.kind import listing_text

                endpoint = Endpoint.from_config(record.config)
                text = listing_text(endpoint.url, record.config["auth"], await relist(), endpoint)
                await self.refresh(name, text)
            except Exception as exc:  # noqa: BLE001 - the stored listing stays in use
                logger.warning(
                    "MCP tools changed upstream but could not be listed again; run "
                    "'blockpilot sources refresh'",
                    extra={"source": name, "error": type(exc).__name__},
                )

    async def aclose(self) -> None:
        """End this process's upstream MCP sessions (``Pilot.close``): a streamable HTTP
        session is deleted upstream, a stdio server's process exits."""
        pool = current_pool()
        if pool is not None:
            await pool.aclose()

    def _build(self, record: SourceRecord) -> Sequence[Block] | None:
        try:
            blocks = source_kind(record.kind).build_blocks(record)
        except Exception as exc:  # noqa: BLE001 - one broken source must not stop the others
            problem = f"could not be built: {type(exc).__name__}: {exc}"
            logger.warning("source skipped", extra={"source": record.name, "problem": problem})
            self.registry.problems.append(BlockLoadProblem(f"source {record.name}", problem))
            return None
        self._configs[record.name] = record.config
        return blocks

    def oauth2_config(self, name: str) -> dict[str, Any] | None:
        """The oauth2 flow of source *name* (authorize/token URLs and scopes), if it has one."""
        config = self._configs.get(name)
        return None if config is None else config.get("oauth2")

    def oauth_provider(self, name: str, settings: Settings) -> OAuthProvider | None:
        """An OAuth app for source *name*: endpoints from its description's oauth2 flow,
        client id and secret from ``BLOCKPILOT_PROVIDER_<NAME>_CLIENT_ID`` / ``_SECRET``;
        for an MCP source with ``--auth oauth``, from discovery and its stored client."""
        mcp_oauth = self._mcp_oauth_config(name)
        if mcp_oauth is not None and self.oauth_clients is not None:
            from blockpilot.sources.mcp.oauth import source_provider

            client = self.oauth_clients.cached(self._ids.get(name, ""))
            return source_provider(name, mcp_oauth, client, settings)
        flow = self.oauth2_config(name)
        client_id = settings.provider_value(name, "CLIENT_ID")
        client_secret = settings.provider_value(name, "CLIENT_SECRET")
        if flow is None or not client_id or not client_secret:
            return None
        authorize_url = settings.provider_value(name, "AUTHORIZE_URL") or flow["authorize_url"]
        token_url = settings.provider_value(name, "TOKEN_URL") or flow["token_url"]
        if not authorize_url or not token_url:
            return None
        return OAuthProvider(name, client_id, SecretStr(client_secret), authorize_url, token_url)

    def _mcp_oauth_config(self, name: str) -> dict[str, Any] | None:
        config = self._configs.get(name) or {}
        oauth = config.get("oauth") if config.get("auth") == "oauth" else None
        return oauth if isinstance(oauth, dict) else None

    async def _load_oauth_clients(self, records: Sequence[SourceRecord]) -> None:
        for record in records:
            self._ids[record.name] = record.id
            if self.oauth_clients is not None and record.config.get("auth") == "oauth":
                await self.oauth_clients.load(record.id)

    async def prepare_oauth_client(self, name: str, redirect_uri: str) -> None:
        """Before a connect to MCP source *name*: make sure it has an OAuth client for
        *redirect_uri*, registering one (RFC 7591) if not (sources/mcp/oauth.py)."""
        from blockpilot.sources.mcp.oauth import register_client

        await self.sync()
        oauth = self._mcp_oauth_config(name)
        if oauth is None or self.oauth_clients is None or name not in self._ids:
            return
        if self._settings_client(name):
            return
        source_id = self._ids[name]
        async with self.oauth_clients.lock(source_id):
            client = await self.oauth_clients.load(source_id)
            usable = client is not None and (
                not client.registered or client.redirect_uri == redirect_uri
            )
            if usable:
                return
            fresh = await register_client(oauth, name, redirect_uri)
            await self.oauth_clients.save(source_id, fresh, replace=client is not None)
            logger.info("registered an OAuth client", extra={"source": name})
        # Other processes read the new client when they see the source change.
        await self.store.replace(await self.store.get(name))
        await self.sync(force=True)

    @staticmethod
    def _settings_client(name: str) -> bool:
        from blockpilot.settings import ENV_PREFIX

        return bool(os.environ.get(f"{ENV_PREFIX}PROVIDER_{name.upper()}_CLIENT_ID"))

    # -- managing sources ------------------------------------------------------------------

    async def read_spec(self, spec: str, *, allow_files: bool = True) -> tuple[str, str]:
        """The text of *spec* (an http(s) URL, or a file path where allowed) and its location."""
        if spec.startswith(("http://", "https://")):
            response = await self.http.request("GET", spec, max_bytes=MAX_SPEC_BYTES)
            if not response.is_success:
                raise InvalidInputError(
                    f"Could not fetch the description: {spec[:200]} answered "
                    f"HTTP {response.status_code}",
                    details={"status": response.status_code},
                )
            return response.text, spec
        if not allow_files:
            raise InvalidInputError("SPEC must be an http(s) URL here (or send spec_text)")
        path = Path(spec).expanduser()
        try:
            if path.stat().st_size > MAX_SPEC_BYTES:
                raise InvalidInputError(f"{spec[:200]} is larger than {MAX_SPEC_BYTES} bytes")
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInputError(
                f"Could not read the description {spec[:200]!r}: {type(exc).__name__}"
            ) from None
        return text, str(path.resolve())

    async def add(
        self, kind: str, name: str, spec_text: str, options: SourceOptions
    ) -> SourceResult:
        """Parse and store a new source; its blocks are usable at once in this process."""
        check_source_name(name)
        parsed = source_kind(kind).parse(name, spec_text, options)
        record = await self.store.add(
            SourceRecord(
                name=name,
                kind=kind,
                spec_text=spec_text,
                config=parsed.config,
                base_url=parsed.base_url,
                location=options.location,
                include_tags=options.include_tags,
                include_operations=options.include_operations,
            )
        )
        await self.sync(force=True)
        return SourceResult(record, parsed)

    async def add_mcp(
        self,
        name: str,
        url: str | None = None,
        *,
        auth: str = "none",
        include_tools: tuple[str, ...] = (),
        headers: Mapping[str, str] | None = None,
        transport: str = "auto",
        command: str | None = None,
        env: tuple[str, ...] = (),
        client_id: str | None = None,
        client_secret: str | None = None,
        scopes: tuple[str, ...] = (),
    ) -> SourceResult:
        """Add an MCP server: list its tools (with the operator's *headers*), store them.

        The server is at *url* (``transport``: streamable-http, sse, or auto: streamable HTTP
        with the older HTTP+SSE as fallback), or is *command* run over stdio with *env*
        (``K=V``, or ``K`` passed through from blockpilot's environment).
        With ``auth="oauth"`` the server's OAuth metadata is discovered and stored; each user
        connects their own account (*client_id*/*client_secret*: the operator's app, else one
        is registered on the first connect; *scopes*: what to ask for, else what the server
        names).
        """
        from blockpilot.sources.mcp._transports import (
            STDIO,
            TRANSPORT_CHOICES,
            Endpoint,
            parse_command,
            parse_env,
        )

        check_source_name(name)
        if (url is None) == (command is None):
            raise InvalidInputError("Give an MCP server's URL or its --command (one of them)")
        if command is not None:
            endpoint = Endpoint(STDIO, command=parse_command(command), env=parse_env(env))
        elif env:
            raise InvalidInputError("--env is for a --command server only")
        elif transport not in TRANSPORT_CHOICES:
            raise InvalidInputError(
                f"Unknown --transport {transport[:20]!r}; use one of: "
                f"{', '.join(TRANSPORT_CHOICES)}",
                details={"transport": transport[:20]},
            )
        else:
            endpoint = Endpoint(transport, url)
        if auth != "oauth" and (client_id or client_secret or scopes):
            raise InvalidInputError("--client-id, --client-secret and --scope need --auth oauth")
        if client_secret and not client_id:
            raise InvalidInputError("--client-secret needs --client-id")
        text = await self._mcp_listing(endpoint, auth, headers, scopes=scopes)
        needs_registration = auth == "oauth" and not client_id and not self._settings_client(name)
        if needs_registration and not json.loads(text)["oauth"].get("registration_endpoint"):
            raise InvalidInputError(
                f"The authorization server of {url!r} does not offer dynamic client "
                "registration: give the OAuth app with --client-id (and --client-secret)"
            )
        options = SourceOptions(base_url=url, include_operations=include_tools, location=url)
        result = await self.add("mcp", name, text, options)
        if client_id and self.oauth_clients is not None:
            from blockpilot.sources.mcp.oauth import SourceClient, choose_auth_method

            methods = result.record.config["oauth"].get("token_auth_methods") or []
            client = SourceClient(
                client_id=client_id,
                client_secret=SecretStr(client_secret) if client_secret else None,
                auth_method=choose_auth_method(methods, bool(client_secret)),
                redirect_uri=None,
                registered=False,
            )
            await self.oauth_clients.save(result.record.id, client, replace=True)
        return result

    async def _mcp_listing(
        self,
        endpoint: Any,
        auth: str,
        headers: Mapping[str, str] | None,
        *,
        scopes: Sequence[str] = (),
    ) -> str:
        from blockpilot.net.policy import exempt_destination
        from blockpilot.sources.mcp._sessions import list_tools
        from blockpilot.sources.mcp._transports import AUTO
        from blockpilot.sources.mcp.kind import AUTH_MODES, check_endpoint, listing_text

        if auth not in AUTH_MODES:
            raise InvalidInputError(
                f"Unknown --auth {auth[:20]!r}; use one of: {', '.join(AUTH_MODES)}",
                details={"auth": auth[:20]},
            )
        if endpoint.transport != AUTO:
            endpoint = check_endpoint(endpoint, auth)
        else:
            check_endpoint(replace(endpoint, transport="streamable-http"), auth)
        http = self.http
        if endpoint.url:
            # The operator named this server: its origin is exempt for this listing only.
            http = self.http.with_exemptions([exempt_destination(endpoint.url)])
        oauth = None
        if auth == "oauth" and endpoint.url:
            from blockpilot.sources.mcp.oauth import discover

            oauth = await discover(endpoint.url, scopes=scopes)
        tools, answered = await list_tools(endpoint, headers or {}, http=http)
        return listing_text(answered.url, auth, tools, answered, oauth=oauth)

    async def refresh(
        self,
        name: str,
        spec_text: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> SourceResult:
        """Parse the source again (re-reading its URL or file where it came from one), store it.

        Block ids stay the same; a changed schema reaches every process on its next check.
        An MCP source lists its server's tools again (with the operator's *headers*).
        """
        record = await self.store.get(name)
        if spec_text is None and record.kind == "mcp":
            from blockpilot.sources.mcp._transports import Endpoint

            spec_text = await self._mcp_listing(
                Endpoint.from_config(record.config),
                record.config["auth"],
                headers,
                scopes=(record.config.get("oauth") or {}).get("scopes") or (),
            )
        if spec_text is None:
            spec_text = record.spec_text
            location = record.location or ""
            if location.startswith(("http://", "https://")) or Path(location).is_file():
                spec_text, _ = await self.read_spec(location)
        options = SourceOptions(
            base_url=record.base_url if record.config.get("base_url_trusted") else None,
            include_tags=record.include_tags,
            include_operations=record.include_operations,
            location=record.location,
        )
        parsed = source_kind(record.kind).parse(name, spec_text, options)
        stored = await self.store.replace(
            replace(record, spec_text=spec_text, config=parsed.config, base_url=parsed.base_url)
        )
        await self.sync(force=True)
        return SourceResult(stored, parsed)

    async def remove(self, name: str) -> None:
        await self.store.remove(name)
        await self.sync(force=True)

    async def list(self) -> list[dict[str, Any]]:
        return [summary(r) for r in await self.store.all()]

    async def show(self, name: str) -> dict[str, Any]:
        record = await self.store.get(name)
        doc = summary(record)
        if record.kind == "mcp":
            from blockpilot.sources.mcp.block import CREDENTIAL_TYPE_OF

            doc["auth"] = auth = record.config.get("auth")
            if isinstance(record.config.get("oauth"), dict):
                oauth = record.config["oauth"]
                doc["oauth"] = {k: oauth.get(k) for k in ("resource", "issuer", "scopes")}
            doc["transport"] = record.config.get("transport") or "streamable-http"
            if doc["transport"] == "stdio":
                # Values may be operator secrets: only the names are shown.
                doc["command"] = record.config.get("command") or []
                doc["env"] = [n for n, _ in record.config.get("env") or ()]
            doc["operations"] = [
                {"name": t["name"], "operation": t["key"], "method": "MCP", "path": t["key"],
                 "effect": t["effect"],
                 "credentials": [CREDENTIAL_TYPE_OF[auth]] if auth in CREDENTIAL_TYPE_OF else [],
                 "scopes": []}
                for t in record.config.get("operations", [])
            ]  # fmt: skip
            doc["skipped"] = record.config.get("skipped", [])
            return doc
        from blockpilot.sources.openapi.kind import operation_summaries

        doc["operations"] = [
            {
                "name": op["name"],
                "operation": op["key"],
                "method": op["method"].upper(),
                "path": op["path"],
                "effect": op["effect"],
                "credentials": op["auth"]["types"] if op.get("auth") else [],
                "scopes": op["auth"]["scopes"] if op.get("auth") else [],
            }
            for op in operation_summaries(record.config)
        ]
        doc["skipped"] = record.config.get("skipped", [])
        return doc


def summary(record: SourceRecord) -> dict[str, Any]:
    from blockpilot.sources.openapi.kind import operation_count

    config = record.config
    return {
        "name": record.name,
        "kind": record.kind,
        "title": config.get("title"),
        "base_url": record.base_url,
        "location": record.location,
        "blocks": (
            operation_count(config)
            if record.kind == "openapi"
            else len(config.get("operations", []))
        ),
        "skipped": len(config.get("skipped", [])),
        "include_tags": list(record.include_tags),
        "include_operations": list(record.include_operations),
        "oauth2": bool(config.get("oauth2")),
        "created_at": record.created_at.isoformat() if record.created_at else None,
        "updated_at": record.updated_at.isoformat() if record.updated_at else None,
    }


__all__ = ["SourceService", "SourceResult"]
