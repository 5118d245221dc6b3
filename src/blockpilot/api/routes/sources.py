"""Imported sources of blocks, for operators: the HTTP twin of ``blockpilot sources``.

Only API keys of users named in ``BLOCKPILOT_ADMIN_USERS`` may use these routes (403
``admin_required`` otherwise). A description is given by URL (fetched through the guarded
client) or inline as text; a server-side file path is never read here (docs/sources.md).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from blockpilot.api.deps import CurrentUser, PilotDep
from blockpilot.api.routes import error_responses
from blockpilot.errors import AdminRequiredError, InvalidInputError
from blockpilot.oauth.flow import parse_scopes
from blockpilot.sources.base import SourceOptions
from blockpilot.storage.users import User

router = APIRouter(tags=["sources"])


async def admin_user(user: CurrentUser, pilot: PilotDep) -> User:
    admins = {name.strip().lower() for name in pilot.settings.admin_users}
    if user.name.lower() not in admins and user.id.lower() not in admins:
        raise AdminRequiredError(
            "Managing sources needs an admin API key: the user must be listed in "
            "BLOCKPILOT_ADMIN_USERS"
        )
    return user


AdminUser = Annotated[User, Depends(admin_user)]
_ADMIN_ERRORS = error_responses(403, 404, 409)


class SourceIn(BaseModel):
    """A source to import: its description by URL or as text."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(max_length=32, description="Kind of source: openapi or mcp.")
    name: str = Field(max_length=40, description="Provider name and block-name prefix.")
    spec_url: str | None = Field(default=None, max_length=2048, description="http(s) URL.")
    spec_text: str | None = Field(default=None, description="The description itself (JSON/YAML).")
    base_url: str | None = Field(default=None, max_length=2048)
    include_tags: list[str] = Field(default_factory=list, max_length=200)
    include_operations: list[str] = Field(default_factory=list, max_length=2000)
    url: str | None = Field(default=None, max_length=2048, description="mcp: the server's URL.")
    transport: str = Field(
        default="auto",
        max_length=32,
        description="mcp: streamable-http, sse, or auto (streamable HTTP, falling back to SSE).",
    )
    command: str | None = Field(
        default=None,
        max_length=4096,
        description="mcp: a command run on this host and spoken to over stdio (instead of url; "
        "needs BLOCKPILOT_SOURCES_ALLOW_COMMANDS).",
    )
    env: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="mcp command: K=V (stored) or K (passed through from the service's "
        "environment).",
    )
    auth: str = Field(
        default="none",
        max_length=16,
        description="mcp: none, bearer (each user stores a token) or oauth (each user connects "
        "their account; discovery, dynamic registration, PKCE: docs/sources.md).",
    )
    client_id: str | None = Field(
        default=None, max_length=512, description="mcp oauth: the operator's OAuth app."
    )
    client_secret: str | None = Field(
        default=None, max_length=2048, description="mcp oauth: its secret (stored encrypted)."
    )
    scopes: list[str] = Field(
        default_factory=list,
        max_length=30,
        description="mcp oauth: scopes to ask for (default: what the server names).",
    )
    include_tools: list[str] = Field(default_factory=list, max_length=2000)
    headers: dict[str, str] = Field(
        default_factory=dict,
        max_length=20,
        description="mcp: headers sent when listing the tools (not stored).",
    )


class RefreshIn(BaseModel):
    """What a refresh may need: headers for listing an MCP server's tools (not stored)."""

    model_config = ConfigDict(extra="forbid")

    headers: dict[str, str] = Field(default_factory=dict, max_length=20)


class SkippedOut(BaseModel):
    operation: str
    reason: str


class SourceResultOut(BaseModel):
    name: str
    kind: str
    blocks: int
    skipped: list[SkippedOut]


@router.post(
    "/sources",
    status_code=201,
    summary="Import a source (admin)",
    responses={**_ADMIN_ERRORS, **error_responses(400, 413, 415, 422)},
)
async def add_source(body: SourceIn, _admin: AdminUser, pilot: PilotDep) -> SourceResultOut:
    if body.kind.strip().lower() == "mcp":
        if body.url is None and body.command is None:
            raise InvalidInputError("An mcp source needs the server's url (or a command)")
        if body.command is not None and not pilot.settings.sources_allow_commands:
            raise InvalidInputError(
                "Adding a command (stdio MCP server) over HTTP is off: run 'blockpilot sources "
                "add mcp NAME --command ...' on the host, or set "
                "BLOCKPILOT_SOURCES_ALLOW_COMMANDS=true"
            )
        mcp = await pilot.sources.add_mcp(
            body.name,
            body.url,
            auth=body.auth.strip().lower(),
            include_tools=tuple(body.include_tools),
            headers=body.headers,
            transport=body.transport.strip().lower(),
            command=body.command,
            env=tuple(body.env),
            client_id=body.client_id,
            client_secret=body.client_secret,
            scopes=tuple(parse_scopes(body.scopes)),
        )
        return SourceResultOut.model_validate(mcp.to_dict())
    if (body.spec_url is None) == (body.spec_text is None):
        raise InvalidInputError("Give exactly one of spec_url and spec_text")
    text, location = body.spec_text or "", None
    if body.spec_url is not None:
        text, location = await pilot.sources.read_spec(body.spec_url, allow_files=False)
    options = SourceOptions(
        base_url=body.base_url,
        include_tags=tuple(body.include_tags),
        include_operations=tuple(body.include_operations),
        location=location,
    )
    result = await pilot.sources.add(body.kind.strip().lower(), body.name, text, options)
    return SourceResultOut.model_validate(result.to_dict())


@router.get("/sources", summary="Imported sources (admin)", responses=_ADMIN_ERRORS)
async def list_sources(_admin: AdminUser, pilot: PilotDep) -> list[dict[str, Any]]:
    return await pilot.sources.list()


@router.get("/sources/{name}", summary="One source and its blocks (admin)", responses=_ADMIN_ERRORS)
async def show_source(name: str, _admin: AdminUser, pilot: PilotDep) -> dict[str, Any]:
    return await pilot.sources.show(name)


@router.post(
    "/sources/{name}/refresh",
    summary="Parse a source again; block ids stay (admin)",
    responses={**_ADMIN_ERRORS, **error_responses(400, 413, 415, 422)},
)
async def refresh_source(
    name: str, _admin: AdminUser, pilot: PilotDep, body: RefreshIn | None = None
) -> SourceResultOut:
    result = await pilot.sources.refresh(name, headers=body.headers if body else None)
    return SourceResultOut.model_validate(result.to_dict())


@router.delete(
    "/sources/{name}", status_code=204, summary="Remove a source (admin)", responses=_ADMIN_ERRORS
)
async def remove_source(name: str, _admin: AdminUser, pilot: PilotDep) -> Response:
    await pilot.sources.remove(name)
    return Response(status_code=204)
