"""Tool responses as MCP ``CallToolResult`` s: the MCP column of the error table.

Every tool outcome is a *result*, never a protocol error: the model reads it and reacts.

=========================  ==========  ==============================================
response ``type``          ``isError``  content
=========================  ==========  ==============================================
error                      true        the response JSON
need_login                 true        the response JSON
input_validation_error     true        the response JSON (a tool error the model can
                                       correct: the MCP spec's "input validation
                                       errors" are tool errors, see ``docs/mcp.md``)
setup_requirements         false       a "connect your account" text with the setup
                                       link(s), then the response JSON
everything else            false       the response JSON
=========================  ==========  ==============================================

``structuredContent`` is always the response JSON (the same object the HTTP API returns).
Protocol errors are reserved for what is not a tool outcome: an unknown tool name
(``-32602``), malformed requests (the SDK answers those), and nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mcp_types import CallToolResult, TextContent

from blockpilot.tools.responses import (
    ErrorResponse,
    ResponseType,
    ToolResponseBase,
)

ERROR_TYPES = frozenset(
    {
        ResponseType.ERROR.value,
        ResponseType.NEED_LOGIN.value,
        ResponseType.INPUT_VALIDATION_ERROR.value,
    }
)


@dataclass(frozen=True, slots=True)
class SetupLink:
    """One credential the user must connect, and where (``url`` is None without a service)."""

    field: str
    provider: str
    provider_name: str
    type: str
    url: str | None
    shown: bool = False  # the front door showed the person the link; the model gets none


def setup_links(data: dict[str, Any]) -> list[SetupLink]:
    """The missing credentials of a ``setup_requirements`` response."""
    setup = data.get("setup_info") or {}
    missing = (setup.get("requirements") or {}).get("credentials") or []
    if not missing:
        missing = list(
            ((setup.get("user_readiness") or {}).get("missing_credentials") or {}).values()
        )
    links = []
    for entry in missing:
        if not isinstance(entry, dict):
            continue
        provider = str(entry.get("provider") or "unknown")
        links.append(
            SetupLink(
                field=str(entry.get("id") or entry.get("title") or "credentials"),
                provider=provider,
                provider_name=str(entry.get("provider_name") or provider),
                type=str(entry.get("type") or "api_key"),
                url=entry.get("setup_url") or None,
                shown=bool(entry.get("link_shown")),
            )
        )
    return links


_SECRET_PLACEHOLDERS: dict[str, dict[str, Any]] = {
    "api_key": {"api_key": "..."},
    "oauth2": {"access_token": "...", "refresh_token": "...", "scopes": []},
    "user_password": {"username": "...", "password": "..."},
    "host_scoped": {"host": "api.example.com", "headers": {"Authorization": "..."}},
}


def add_credential_command(link: SetupLink, user_hint: str = "USER") -> str:
    """The ``blockpilot credentials add`` command for a missing credential, secrets as "..."."""
    example = {
        "provider": link.provider,
        "type": link.type,
        **_SECRET_PLACEHOLDERS.get(link.type, {}),
    }
    return f"blockpilot credentials add --user {user_hint} --json '{json.dumps(example)}'"


def setup_text(data: dict[str, Any], *, user_hint: str = "USER", outcome: str | None = None) -> str:
    """What to show the user for a ``setup_requirements`` response, links first."""
    block = (data.get("setup_info") or {}).get("agent_name") or "This block"
    links = setup_links(data)
    lines = [f"ACTION REQUIRED: {block} needs an account connected before it can run."]
    with_url = [link for link in links if link.url]
    for link in with_url:
        lines.append(f"Connect {link.provider_name} ({link.field}): {link.url}")
    lines.extend(
        f"Connect {link.provider_name} ({link.field}): the link was shown to the user directly."
        for link in links
        if not link.url and link.shown
    )
    without = [link for link in links if not link.url and not link.shown]
    if without:
        lines.append("Add the credential on the server running blockpilot:")
        lines.extend(f"  {add_credential_command(link, user_hint)}" for link in without)
    if outcome:
        lines.append(outcome)
    lines.append(
        "Show this to the user, wait until they have connected it, then run the block again."
    )
    return "\n".join(lines)


def tool_result(
    response: ToolResponseBase, *, note: str | None = None, user_hint: str = "USER"
) -> CallToolResult:
    """*response* as the ``CallToolResult`` the client receives (see the module's table)."""
    text = response.to_json()
    data = json.loads(text)
    content: list[TextContent] = []
    if data.get("type") == ResponseType.SETUP_REQUIREMENTS.value:
        content.append(
            TextContent(type="text", text=setup_text(data, user_hint=user_hint, outcome=note))
        )
    content.append(TextContent(type="text", text=text))
    return CallToolResult(
        content=list(content), structured_content=data, is_error=data.get("type") in ERROR_TYPES
    )


def internal_error_result(tool: str) -> CallToolResult:
    """The result for a failure of ours: generic, no details (they are in the server log)."""
    return tool_result(
        ErrorResponse(
            message=f"An error occurred while executing {tool}",
            error="internal_error",
            code="internal_error",
        )
    )
