"""Managing sources (add, refresh, remove) and keeping every process's catalogue current.

Each process holds the blocks of every stored source in its registry. :meth:`SourceService.sync`
compares the stored versions (one small query, at most once per ``check_seconds``) and
rebuilds only the sources that changed, so a refresh anywhere reaches everyone
(docs/sources.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import SecretStr

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
from blockpilot.sources.openapi.document import MAX_SPEC_BYTES
from blockpilot.storage.sources import SourceRecord, SourceStore

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
    ) -> None:
        self.store = store
        self.registry = registry
        self.http = http
        self.check_seconds = check_seconds
        self._versions: dict[str, str] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._checked = float("-inf")
        self._lock = asyncio.Lock()

    # -- keeping the catalogue current -----------------------------------------------------

    async def sync(self, *, force: bool = False) -> None:
        """Rebuild the blocks of sources added, refreshed or removed since the last check
        (and first list again the tools of MCP servers that said theirs changed)."""
        await self._refresh_changed_mcp()
        if not force and time.monotonic() - self._checked < self.check_seconds:
            return
        async with self._lock:
            if not force and time.monotonic() - self._checked < self.check_seconds:
                return
            versions = await self.store.versions()
            self._checked = time.monotonic()
            changed = [n for n, v in versions.items() if self._versions.get(n) != v]
            for name in [n for n in self._versions if n not in versions]:
                self.registry.remove_source_blocks(name)
                self._configs.pop(name, None)
                del self._versions[name]
            for record in await self.store.load(changed):
                self._install(record)
                self._versions[record.name] = versions[record.name]

    async def _refresh_changed_mcp(self) -> None:
        from blockpilot.sources.mcp.sessions import current_pool

        pool = current_pool()
        if pool is None:
            return
        for name, relist in pool.take_changed().items():
            try:
                record = await self.store.get(name)
                if record.kind != "mcp":
                    continue
                from blockpilot.sources.mcp.kind import listing_text
                from blockpilot.sources.mcp.transports import Endpoint

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
        from blockpilot.sources.mcp.sessions import current_pool

        pool = current_pool()
        if pool is not None:
            await pool.aclose()

    def _install(self, record: SourceRecord) -> None:
        try:
            blocks = source_kind(record.kind).build_blocks(record)
        except Exception as exc:  # noqa: BLE001 - one broken source must not stop the others
            problem = f"could not be built: {type(exc).__name__}: {exc}"
            logger.warning("source skipped", extra={"source": record.name, "problem": problem})
            self.registry.problems.append(BlockLoadProblem(f"source {record.name}", problem))
            self.registry.remove_source_blocks(record.name)
            return
        self.registry.set_source_blocks(record.name, blocks)
        self._configs[record.name] = record.config

    def oauth2_config(self, name: str) -> dict[str, Any] | None:
        """The oauth2 flow of source *name* (authorize/token URLs and scopes), if it has one."""
        config = self._configs.get(name)
        return None if config is None else config.get("oauth2")

    def oauth_provider(self, name: str, settings: Settings) -> OAuthProvider | None:
        """An OAuth app for source *name*: endpoints from its description's oauth2 flow,
        client id and secret from ``BLOCKPILOT_PROVIDER_<NAME>_CLIENT_ID`` / ``_SECRET``."""
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
    ) -> SourceResult:
        """Add an MCP server: list its tools (with the operator's *headers*), store them.

        The server is at *url* (``transport``: streamable-http, sse, or auto: streamable HTTP
        with the older HTTP+SSE as fallback), or is *command* run over stdio with *env*
        (``K=V``, or ``K`` passed through from blockpilot's environment).
        """
        from blockpilot.sources.mcp.transports import (
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
        text = await self._mcp_listing(endpoint, auth, headers)
        options = SourceOptions(base_url=url, include_operations=include_tools, location=url)
        return await self.add("mcp", name, text, options)

    async def _mcp_listing(
        self, endpoint: Any, auth: str, headers: Mapping[str, str] | None
    ) -> str:
        from blockpilot.net.policy import exempt_destination
        from blockpilot.sources.mcp.kind import AUTH_MODES, check_endpoint, listing_text
        from blockpilot.sources.mcp.sessions import list_tools
        from blockpilot.sources.mcp.transports import AUTO

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
        tools, answered = await list_tools(endpoint, headers or {}, http=http)
        return listing_text(answered.url, auth, tools, answered)

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
            from blockpilot.sources.mcp.transports import Endpoint

            spec_text = await self._mcp_listing(
                Endpoint.from_config(record.config), record.config["auth"], headers
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
            doc["auth"] = record.config.get("auth")
            doc["transport"] = record.config.get("transport") or "streamable-http"
            if doc["transport"] == "stdio":
                # Values may be operator secrets: only the names are shown.
                doc["command"] = record.config.get("command") or []
                doc["env"] = [n for n, _ in record.config.get("env") or ()]
            doc["operations"] = [
                {"name": t["name"], "operation": t["key"], "method": "MCP", "path": t["key"],
                 "effect": t["effect"],
                 "credentials": ["api_key"] if record.config.get("auth") == "bearer" else [],
                 "scopes": []}
                for t in record.config.get("operations", [])
            ]  # fmt: skip
            doc["skipped"] = record.config.get("skipped", [])
            return doc
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
            for op in record.config.get("operations", [])
        ]
        doc["skipped"] = record.config.get("skipped", [])
        return doc


def summary(record: SourceRecord) -> dict[str, Any]:
    config = record.config
    return {
        "name": record.name,
        "kind": record.kind,
        "title": config.get("title"),
        "base_url": record.base_url,
        "location": record.location,
        "blocks": len(config.get("operations", [])),
        "skipped": len(config.get("skipped", [])),
        "include_tags": list(record.include_tags),
        "include_operations": list(record.include_operations),
        "oauth2": bool(config.get("oauth2")),
        "created_at": record.created_at.isoformat() if record.created_at else None,
        "updated_at": record.updated_at.isoformat() if record.updated_at else None,
    }


__all__ = ["SourceService", "SourceResult"]
