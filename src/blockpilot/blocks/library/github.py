"""GitHub blocks.

Issue URLs are parsed, never fetched as given: requests go to the API host only.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import APIKeyCredentials, CredentialsMetaInput, OAuth2Credentials
from blockpilot.executions.context import ExecutionContext

GITHUB_API = "https://api.github.com"
_NAME = r"[A-Za-z0-9_.\-]{1,100}"
_HTML_PATH = re.compile(rf"^/({_NAME})/({_NAME})/(?:issues|pull)/(\d{{1,10}})/?$")
_API_PATH = re.compile(rf"^/repos/({_NAME})/({_NAME})/issues/(\d{{1,10}})/?$")


def parse_issue_url(url: str, api_base: str) -> tuple[str, str, int] | None:
    """(owner, repo, number) from a github.com issue URL or an API issue URL on *api_base*'s
    host."""
    try:
        parts = urlsplit(url.strip())
        api = urlsplit(api_base)
        port, api_port = parts.port, api.port
    except ValueError:
        return None
    if parts.username is not None or parts.scheme not in ("https", "http"):
        return None
    host = (parts.hostname or "").lower()
    if host == "github.com" and parts.scheme == "https" and port in (None, 443):
        match = _HTML_PATH.match(parts.path)
    elif host == (api.hostname or "").lower() and port == api_port and parts.scheme == api.scheme:
        base_path = api.path.rstrip("/")
        if not parts.path.startswith(base_path + "/"):
            return None  # same host, but not under the API's path prefix
        match = _API_PATH.match(parts.path[len(base_path) :])
    else:
        return None
    if match is None or match.group(1) in (".", "..") or match.group(2) in (".", ".."):
        return None
    return match.group(1), match.group(2), int(match.group(3))


class GithubReadIssueBlock(Block):
    id = "b4a3c2f1-6e5d-4c8b-9a7f-0e1d2c3b4a59"
    effect = BlockEffect.READ
    description = "Reads a GitHub issue (title, body and author) from its URL."
    categories = frozenset({BlockCategory.DEVELOPER_TOOLS, BlockCategory.ISSUE_TRACKING})

    class Input(BlockSchemaInput):
        issue_url: str = SchemaField(
            description="URL of the issue, e.g. https://github.com/owner/repo/issues/1",
            max_length=2048,
        )
        credentials: CredentialsMetaInput = CredentialsField(
            providers=["github"],
            supported_types=["api_key", "oauth2"],
            required_scopes=["repo"],
            description="GitHub token or connected GitHub account",
        )

    class Output(BlockSchemaOutput):
        title: str = SchemaField(description="Title of the issue")
        body: str = SchemaField(description="Body of the issue")
        user: str = SchemaField(description="Login of the issue's author")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: APIKeyCredentials | OAuth2Credentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        api_base = (execution_context.provider_base_url("github") or GITHUB_API).rstrip("/")
        parsed = parse_issue_url(input_data.issue_url, api_base)
        if parsed is None:
            yield (
                "error",
                "issue_url must be a GitHub issue URL such as https://github.com/owner/repo/issues/1",
            )
            return
        owner, repo, number = parsed
        response = await execution_context.http.request(
            "GET",
            f"{api_base}/repos/{owner}/{repo}/issues/{number}",
            headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"},
            sensitive_headers={"Authorization": credentials.auth_header()},
        )
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code >= 400 or not isinstance(payload, dict):
            message = payload.get("message", "") if isinstance(payload, dict) else ""
            yield (
                "error",
                f"GitHub API returned HTTP {response.status_code}"
                + (f": {message}" if message else ""),
            )
            return
        yield "title", str(payload.get("title") or "")
        yield "body", str(payload.get("body") or "")
        yield "user", str((payload.get("user") or {}).get("login") or "")
