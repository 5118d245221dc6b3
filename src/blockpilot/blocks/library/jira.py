"""Jira Cloud blocks over the REST API v3 (https://developer.atlassian.com/cloud/jira/platform/
rest/v3/), with an API token bound to the user's Jira site.

The credential is host-scoped: the site's host (``acme.atlassian.net``) and an
``Authorization: Basic base64(email:api_token)`` header. The block's ``site_url`` names the
site; only a credential stored for that host is matched, and the header goes nowhere else.
Sites are ``https://<name>.atlassian.net``, or under the operator's
``BLOCKPILOT_PROVIDER_JIRA_BASE_URL`` (a self-hosted gateway, or a test double).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.library._provider_api import MAX_PAGES, ProviderAPI, segment, trim
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import CredentialsMetaInput, HostScopedCredentials
from blockpilot.errors import BlockExecutionError
from blockpilot.executions.context import ExecutionContext

SEARCH_FIELDS = "summary,status,assignee,priority,issuetype,updated"


def jira_credentials_field() -> Any:
    return CredentialsField(
        providers=["jira"],
        supported_types=["host_scoped"],
        discriminator="site_url",
        description="Jira API token for this site (host-scoped Basic authorization)",
    )


def _site_url_field() -> Any:
    return SchemaField(
        description="Your Jira Cloud site, e.g. https://acme.atlassian.net", max_length=300
    )


def site_origin(site_url: str, operator_base: str | None) -> str:
    """``scheme://host[:port]`` of a Jira Cloud site, or of the operator's Jira base URL."""
    try:
        parts = urlsplit(site_url.strip())
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is not None and parts.username is None and parts.hostname:
        host = parts.hostname.lower()
        origin = f"{parts.scheme}://{parts.netloc.lower()}"
        if operator_base and origin == operator_base.rstrip("/").lower():
            return operator_base.rstrip("/")
        if (
            parts.scheme == "https"
            and port in (None, 443)
            and host.endswith(".atlassian.net")
            and host.count(".") == 2
        ):
            return f"https://{host}"
    raise BlockExecutionError(
        "site_url must be your Jira Cloud site, e.g. https://acme.atlassian.net"
    )


def adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document Format document (a paragraph per line)."""
    return {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": line}]}
            for line in text.splitlines()
            if line.strip()
        ],
    }


class JiraBlockBase(Block):
    """Shared plumbing: the site's API with the credential's headers, for that site only."""

    categories = frozenset({BlockCategory.PRODUCTIVITY, BlockCategory.ISSUE_TRACKING})

    async def run(
        self,
        input_data: Any,
        *,
        credentials: HostScopedCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        origin = site_origin(input_data.site_url, execution_context.provider_base_url("jira"))
        if not credentials.matches_url(origin + "/rest/api/3/myself"):
            # Matching only hands over a credential for this site; should that ever break,
            # the token must still never reach another host.
            raise BlockExecutionError(
                f"The Jira credential is for {credentials.host}, not for {urlsplit(origin).netloc}"
            )
        api = ProviderAPI(
            execution_context,
            provider="jira",
            display="Jira",
            default_base=origin,
            base=origin,
            auth=credentials.header_values(),
            headers={"Accept": "application/json"},
        )
        async for output in self.call(api, input_data):
            yield output

    def call(self, api: ProviderAPI, input_data: Any) -> BlockOutput:
        raise NotImplementedError


def _name(value: Any, key: str = "name") -> str:
    return str(value.get(key) or "") if isinstance(value, dict) else ""


class JiraSearchIssuesBlock(JiraBlockBase):
    id = "275aa0ef-43d0-4f6e-9ce1-97485a345c87"
    effect = BlockEffect.READ
    description = (
        "Searches Jira issues with a JQL query (e.g. 'project = ENG AND status = \"In "
        "Progress\"' or 'assignee = currentUser()'); returns key, summary, status, assignee, "
        "priority and link."
    )

    class Input(BlockSchemaInput):
        site_url: str = _site_url_field()
        jql: str = SchemaField(description="JQL query", min_length=1, max_length=5000)
        max_results: Integer = SchemaField(default=25, ge=1, le=200, description="Most issues")
        credentials: CredentialsMetaInput = jira_credentials_field()

    class Output(BlockSchemaOutput):
        issues: list[dict[str, Any]] = SchemaField(
            description="Issues: key, summary, status, assignee, priority, type, updated, url"
        )

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        issues: list[dict[str, Any]] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            page = await api.call(
                "GET",
                "/rest/api/3/search/jql",
                params={
                    "jql": input_data.jql,
                    "maxResults": min(100, input_data.max_results - len(issues)),
                    "fields": SEARCH_FIELDS,
                    "nextPageToken": token,
                },
            )
            issues += [i for i in page.get("issues") or [] if isinstance(i, dict)]
            token = page.get("nextPageToken")
            if page.get("isLast", True) or not token or len(issues) >= input_data.max_results:
                break
        yield (
            "issues",
            [
                {
                    "key": issue.get("key"),
                    "summary": trim((issue.get("fields") or {}).get("summary"), 500),
                    "status": _name((issue.get("fields") or {}).get("status")),
                    "assignee": _name((issue.get("fields") or {}).get("assignee"), "displayName"),
                    "priority": _name((issue.get("fields") or {}).get("priority")),
                    "type": _name((issue.get("fields") or {}).get("issuetype")),
                    "updated": (issue.get("fields") or {}).get("updated"),
                    "url": f"{api.base}/browse/{issue.get('key')}",
                }
                for issue in issues[: input_data.max_results]
            ],
        )


class JiraCreateIssueBlock(JiraBlockBase):
    id = "7efe1b3b-8dc8-4066-bb4e-81d1cbe11e01"
    effect = BlockEffect.WRITE
    description = "Creates a Jira issue (task, bug or story) in a project."

    class Input(BlockSchemaInput):
        site_url: str = _site_url_field()
        project_key: str = SchemaField(
            description="Key of the project, e.g. ENG", min_length=1, max_length=50
        )
        summary: str = SchemaField(description="Summary (title)", min_length=1, max_length=255)
        description: str = SchemaField(
            default="", description="Description (plain text)", max_length=30_000
        )
        issue_type: str = SchemaField(
            default="Task", description="Issue type, e.g. Task, Bug or Story", max_length=100
        )
        credentials: CredentialsMetaInput = jira_credentials_field()

    class Output(BlockSchemaOutput):
        key: str = SchemaField(description="Key of the new issue, e.g. ENG-42")
        id: str = SchemaField(description="Id of the new issue")
        url: str = SchemaField(description="Link to the new issue")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        fields: dict[str, Any] = {
            "project": {"key": input_data.project_key.strip()},
            "summary": input_data.summary,
            "issuetype": {"name": input_data.issue_type},
        }
        if input_data.description.strip():
            fields["description"] = adf(input_data.description)
        created = await api.call("POST", "/rest/api/3/issue", json={"fields": fields})
        key = str(created.get("key") or "")
        yield "key", key
        yield "id", str(created.get("id") or "")
        yield "url", f"{api.base}/browse/{key}"


class JiraAddCommentBlock(JiraBlockBase):
    id = "64a41edf-3b43-4df7-be28-fb8ec0cbbc00"
    effect = BlockEffect.WRITE
    description = "Adds a comment to a Jira issue."

    class Input(BlockSchemaInput):
        site_url: str = _site_url_field()
        issue_key: str = SchemaField(
            description="Key of the issue, e.g. ENG-42", min_length=1, max_length=50
        )
        comment: str = SchemaField(
            description="Text of the comment", min_length=1, max_length=30_000
        )
        credentials: CredentialsMetaInput = jira_credentials_field()

    class Output(BlockSchemaOutput):
        comment_id: str = SchemaField(description="Id of the new comment")
        created: str = SchemaField(description="When it was created")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        created = await api.call(
            "POST",
            f"/rest/api/3/issue/{segment(input_data.issue_key)}/comment",
            json={"body": adf(input_data.comment)},
        )
        yield "comment_id", str(created.get("id") or "")
        yield "created", str(created.get("created") or "")
