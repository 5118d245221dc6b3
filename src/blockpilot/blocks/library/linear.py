"""Linear blocks over Linear's GraphQL API (https://developers.linear.app), with a personal
API key or a connected Linear workspace (OAuth, with Linear's scopes).

GraphQL answers errors inside a 200 (or a 400) as ``{"errors": [...]}``; a ``RATELIMITED``
error code is a rate limit like HTTP 429.
"""

from __future__ import annotations

from typing import Any

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.library._provider_api import (
    MAX_DETAIL_CHARS,
    MAX_PAGES,
    ProviderAPI,
    error_detail,
    trim,
)
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import APIKeyCredentials, CredentialsMetaInput, OAuth2Credentials
from blockpilot.errors import BlockExecutionError, UpstreamAPIError, UpstreamRateLimitedError
from blockpilot.executions.context import ExecutionContext

ISSUE_FIELDS = (
    "id identifier title description url priority state { name } assignee { name } "
    "project { name } team { key }"
)


def linear_credentials_field(*scopes: str) -> Any:
    return CredentialsField(
        providers=["linear"],
        supported_types=["api_key", "oauth2"],
        required_scopes=scopes,
        description="Linear API key or connected Linear workspace",
    )


def issue_summary(node: dict[str, Any]) -> dict[str, Any]:
    def name(key: str) -> str:
        value = node.get(key)
        return str(value.get("name") or "") if isinstance(value, dict) else ""

    return {
        "id": node.get("id"),
        "identifier": node.get("identifier"),
        "title": str(node.get("title") or ""),
        "description": trim(node.get("description"), 1000),
        "state": name("state"),
        "priority": node.get("priority"),
        "assignee": name("assignee"),
        "project": name("project"),
        "url": node.get("url"),
    }


class LinearBlockBase(Block):
    """Shared plumbing: one GraphQL call with the key (bare) or OAuth token (Bearer)."""

    categories = frozenset({BlockCategory.PRODUCTIVITY, BlockCategory.ISSUE_TRACKING})

    async def run(
        self,
        input_data: Any,
        *,
        credentials: APIKeyCredentials | OAuth2Credentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        # Linear takes personal API keys without a scheme and OAuth tokens as Bearer.
        auth = (
            credentials.api_key.get_secret_value()
            if isinstance(credentials, APIKeyCredentials)
            else credentials.auth_header()
        )
        api = ProviderAPI.known(execution_context, "linear", auth={"Authorization": auth})
        async for output in self.call(api, input_data):
            yield output

    def call(self, api: ProviderAPI, input_data: Any) -> BlockOutput:
        raise NotImplementedError

    @staticmethod
    async def graphql(api: ProviderAPI, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """The ``data`` of a GraphQL answer; its ``errors`` become typed errors."""
        response = await api.send("POST", "/graphql", json={"query": query, "variables": variables})
        try:
            payload = response.json()
        except ValueError:
            payload = None
        errors = payload.get("errors") if isinstance(payload, dict) else None
        if isinstance(errors, list) and errors:
            first = errors[0] if isinstance(errors[0], dict) else {}
            code = str((first.get("extensions") or {}).get("code") or "").upper()
            if code == "RATELIMITED":
                raise UpstreamRateLimitedError(
                    "Linear rate limit reached; try again in 60 seconds",
                    retry_after=60,
                    details={"provider": "linear", "status": response.status_code},
                )
            raise UpstreamAPIError(
                f"Linear API error: {trim(error_detail(first), MAX_DETAIL_CHARS)}",
                details={"provider": "linear", "status": response.status_code},
            )
        if response.status_code >= 400 or not isinstance(payload, dict):
            raise api.fail(response, payload)
        data = payload.get("data")
        return data if isinstance(data, dict) else {}

    async def connection(
        self, api: ProviderAPI, query: str, variables: dict[str, Any], field: str, limit: int
    ) -> list[dict[str, Any]]:
        """Up to *limit* nodes of the Relay connection *field* (``first``/``after``)."""
        nodes: list[dict[str, Any]] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            data = await self.graphql(
                api, query, {**variables, "first": min(50, limit - len(nodes)), "after": after}
            )
            conn = data.get(field)
            if not isinstance(conn, dict):
                break
            nodes += [n for n in conn.get("nodes") or [] if isinstance(n, dict)]
            info = conn.get("pageInfo") or {}
            after = info.get("endCursor") if info.get("hasNextPage") else None
            if not after or len(nodes) >= limit:
                break
        return nodes[:limit]


async def _id_by_name(block: LinearBlockBase, api: ProviderAPI, kind: str, name: str) -> str:
    """The id of the team or project called *name* (case-insensitive)."""
    data = await block.graphql(
        api,
        f"query($name: String!) {{ {kind}(filter: {{ name: {{ eqIgnoreCase: $name }} }}) "
        "{ nodes { id name } } }",
        {"name": name},
    )
    nodes = (data.get(kind) or {}).get("nodes") or []
    if not nodes:
        raise BlockExecutionError(f"No Linear {kind[:-1]} is called {name!r}")
    return str(nodes[0]["id"])


class LinearSearchIssuesBlock(LinearBlockBase):
    id = "10234cff-f366-4156-bbc4-8f0495e880e3"
    effect = BlockEffect.READ
    description = (
        "Searches Linear issues (tickets) by text; returns identifier, title, state, "
        "assignee, priority and URL."
    )

    class Input(BlockSchemaInput):
        term: str = SchemaField(description="Text to search for", min_length=1, max_length=500)
        max_results: Integer = SchemaField(default=10, ge=1, le=100, description="Most issues")
        credentials: CredentialsMetaInput = linear_credentials_field("read")

    class Output(BlockSchemaOutput):
        issues: list[dict[str, Any]] = SchemaField(
            description="Issues: id, identifier, title, description, state, priority, "
            "assignee, project, url"
        )

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        nodes = await self.connection(
            api,
            "query($term: String!, $first: Int, $after: String) { searchIssues(term: $term, "
            f"first: $first, after: $after) {{ nodes {{ {ISSUE_FIELDS} }} "
            "pageInfo { hasNextPage endCursor } } }",
            {"term": input_data.term},
            "searchIssues",
            input_data.max_results,
        )
        yield "issues", [issue_summary(n) for n in nodes]


class LinearCreateIssueBlock(LinearBlockBase):
    id = "c048c30b-c93f-4407-9692-e72e36fa7782"
    effect = BlockEffect.WRITE
    description = "Creates a new issue (ticket) in a Linear team, optionally in a project."

    class Input(BlockSchemaInput):
        title: str = SchemaField(description="Title of the issue", min_length=1, max_length=500)
        description: str = SchemaField(
            default="", description="Description (Markdown)", max_length=100_000
        )
        team_name: str = SchemaField(description="Name of the Linear team", max_length=200)
        priority: Integer = SchemaField(
            default=0, ge=0, le=4, description="0 none, 1 urgent, 2 high, 3 medium, 4 low"
        )
        project_name: str = SchemaField(
            default="", description="Name of a project to add it to", max_length=200
        )
        credentials: CredentialsMetaInput = linear_credentials_field("issues:create")

    class Output(BlockSchemaOutput):
        issue_id: str = SchemaField(description="Id of the new issue")
        identifier: str = SchemaField(description="Identifier, e.g. ENG-123")
        url: str = SchemaField(description="URL of the new issue")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        issue: dict[str, Any] = {
            "title": input_data.title,
            "teamId": await _id_by_name(self, api, "teams", input_data.team_name),
            "priority": input_data.priority,
        }
        if input_data.description:
            issue["description"] = input_data.description
        if input_data.project_name:
            issue["projectId"] = await _id_by_name(self, api, "projects", input_data.project_name)
        data = await self.graphql(
            api,
            "mutation($input: IssueCreateInput!) { issueCreate(input: $input) "
            "{ success issue { id identifier url } } }",
            {"input": issue},
        )
        created = (data.get("issueCreate") or {}).get("issue") or {}
        yield "issue_id", str(created.get("id") or "")
        yield "identifier", str(created.get("identifier") or "")
        yield "url", str(created.get("url") or "")


class LinearCreateCommentBlock(LinearBlockBase):
    id = "b508584a-806b-4508-aaa0-f56d0ba65789"
    effect = BlockEffect.WRITE
    description = "Adds a comment to a Linear issue."

    class Input(BlockSchemaInput):
        issue_id: str = SchemaField(
            description="Issue id or identifier such as ENG-123", min_length=1, max_length=100
        )
        comment: str = SchemaField(
            description="Text of the comment (Markdown)", min_length=1, max_length=100_000
        )
        credentials: CredentialsMetaInput = linear_credentials_field("comments:create")

    class Output(BlockSchemaOutput):
        comment_id: str = SchemaField(description="Id of the new comment")
        comment_body: str = SchemaField(description="Text of the comment as stored")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        data = await self.graphql(
            api,
            "mutation($input: CommentCreateInput!) { commentCreate(input: $input) "
            "{ success comment { id body } } }",
            {"input": {"issueId": input_data.issue_id.strip(), "body": input_data.comment}},
        )
        comment = (data.get("commentCreate") or {}).get("comment") or {}
        yield "comment_id", str(comment.get("id") or "")
        yield "comment_body", str(comment.get("body") or "")


class LinearGetProjectIssuesBlock(LinearBlockBase):
    id = "55dd7be2-3da3-4f74-8b50-730c32760c68"
    effect = BlockEffect.READ
    description = (
        "Lists the issues of a Linear project, optionally only those in one workflow state "
        "(e.g. 'In Progress')."
    )

    class Input(BlockSchemaInput):
        project: str = SchemaField(description="Name of the project", min_length=1, max_length=200)
        status: str = SchemaField(
            default="", description="Only issues in this state, e.g. Todo", max_length=100
        )
        max_results: Integer = SchemaField(default=50, ge=1, le=250, description="Most issues")
        credentials: CredentialsMetaInput = linear_credentials_field("read")

    class Output(BlockSchemaOutput):
        issues: list[dict[str, Any]] = SchemaField(
            description="Issues: id, identifier, title, description, state, priority, "
            "assignee, project, url"
        )

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        issue_filter: dict[str, Any] = {"project": {"name": {"eqIgnoreCase": input_data.project}}}
        if input_data.status:
            issue_filter["state"] = {"name": {"eqIgnoreCase": input_data.status}}
        nodes = await self.connection(
            api,
            "query($filter: IssueFilter, $first: Int, $after: String) { issues(filter: $filter, "
            f"first: $first, after: $after) {{ nodes {{ {ISSUE_FIELDS} }} "
            "pageInfo { hasNextPage endCursor } } }",
            {"filter": issue_filter},
            "issues",
            input_data.max_results,
        )
        yield "issues", [issue_summary(n) for n in nodes]
