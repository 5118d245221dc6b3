"""GitHub blocks over the REST API (https://docs.github.com/rest).

Repository, issue and pull request URLs are parsed, never fetched as given: requests go to
the API host only (``https://api.github.com`` or the operator's
``BLOCKPILOT_PROVIDER_GITHUB_BASE_URL``), with the user's token or connected account.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.library._provider_api import MAX_PAGES, ProviderAPI, segment, trim
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import APIKeyCredentials, CredentialsMetaInput, OAuth2Credentials
from blockpilot.errors import BlockExecutionError
from blockpilot.executions.context import ExecutionContext

_NAME = r"[A-Za-z0-9_.\-]{1,100}"
_HTML_PATHS = {
    "repo": re.compile(rf"^/({_NAME})/({_NAME})/?$"),
    "issue": re.compile(rf"^/({_NAME})/({_NAME})/(?:issues|pull)/(\d{{1,10}})/?$"),
    "pull": re.compile(rf"^/({_NAME})/({_NAME})/pull/(\d{{1,10}})(?:/files|/commits)?/?$"),
}
_API_PATHS = {
    "repo": re.compile(rf"^/repos/({_NAME})/({_NAME})/?$"),
    "issue": re.compile(rf"^/repos/({_NAME})/({_NAME})/issues/(\d{{1,10}})/?$"),
    "pull": re.compile(rf"^/repos/({_NAME})/({_NAME})/pulls/(\d{{1,10}})/?$"),
}
_SHORT_REPO = re.compile(rf"^({_NAME})/({_NAME})$")
MAX_FILE_CHARS = 100_000
MAX_DIFF_CHARS = 60_000


def _parse(url: str, api_base: str, kind: str) -> tuple[str, str, int | None] | None:
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
        path = parts.path
        if kind == "repo" and path.endswith(".git"):
            path = path[: -len(".git")]
        match = _HTML_PATHS[kind].match(path)
    elif host == (api.hostname or "").lower() and port == api_port and parts.scheme == api.scheme:
        base_path = api.path.rstrip("/")
        if not parts.path.startswith(base_path + "/"):
            return None  # same host, but not under the API's path prefix
        match = _API_PATHS[kind].match(parts.path[len(base_path) :])
    else:
        return None
    if match is None or match.group(1) in (".", "..") or match.group(2) in (".", ".."):
        return None
    number = int(match.group(3)) if kind != "repo" else None
    return match.group(1), match.group(2), number


def parse_issue_url(url: str, api_base: str) -> tuple[str, str, int] | None:
    """(owner, repo, number) from a github.com issue (or pull request) URL or an API issue URL
    on *api_base*'s host."""
    parsed = _parse(url, api_base, "issue")
    return (parsed[0], parsed[1], parsed[2] or 0) if parsed else None


def parse_pull_url(url: str, api_base: str) -> tuple[str, str, int] | None:
    """(owner, repo, number) from a github.com pull request URL or an API pulls URL."""
    parsed = _parse(url, api_base, "pull")
    return (parsed[0], parsed[1], parsed[2] or 0) if parsed else None


def parse_repo_url(url: str, api_base: str) -> tuple[str, str] | None:
    """(owner, repo) from ``owner/repo``, a github.com repository URL or an API repo URL."""
    short = _SHORT_REPO.match(url.strip())
    if short and short.group(1) not in (".", "..") and short.group(2) not in (".", ".."):
        return short.group(1), short.group(2)
    parsed = _parse(url, api_base, "repo")
    return (parsed[0], parsed[1]) if parsed else None


def _file_path(path: str) -> str:
    """A repository file path, each segment percent-encoded; no empty, ``.`` or ``..`` parts."""
    parts = path.strip().strip("/").split("/")
    if not parts or any(p in ("", ".", "..") for p in parts):
        raise BlockExecutionError(
            "file_path must be a path inside the repository such as docs/README.md"
        )
    return "/".join(quote(p, safe="") for p in parts)


def github_credentials_field() -> Any:
    return CredentialsField(
        providers=["github"],
        supported_types=["api_key", "oauth2"],
        required_scopes=["repo"],
        description="GitHub token or connected GitHub account",
    )


def _repo_url_field() -> Any:
    return SchemaField(
        description="The repository, as https://github.com/owner/repo or owner/repo",
        max_length=2048,
    )


def _limit_field(default: int = 30) -> Any:
    return SchemaField(default=default, ge=1, le=200, description="Most items to return")


class GithubBlockBase(Block):
    """Shared plumbing: the API client with the credential, URL parsing, pagination."""

    categories = frozenset({BlockCategory.DEVELOPER_TOOLS})

    async def run(
        self,
        input_data: Any,
        *,
        credentials: APIKeyCredentials | OAuth2Credentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        api = ProviderAPI.known(
            execution_context, "github", auth={"Authorization": credentials.auth_header()}
        )
        async for output in self.call(api, input_data):
            yield output

    def call(self, api: ProviderAPI, input_data: Any) -> BlockOutput:
        raise NotImplementedError

    @staticmethod
    def repo(api: ProviderAPI, url: str) -> str:
        """``/repos/{owner}/{repo}`` for a repository URL, or a block error naming the field."""
        parsed = parse_repo_url(url, api.base)
        if parsed is None:
            raise BlockExecutionError(
                "repo_url must be a GitHub repository such as https://github.com/owner/repo"
            )
        return f"/repos/{segment(parsed[0])}/{segment(parsed[1])}"

    @staticmethod
    def issue(api: ProviderAPI, url: str) -> str:
        parsed = parse_issue_url(url, api.base)
        if parsed is None:
            raise BlockExecutionError(
                "issue_url must be a GitHub issue URL such as https://github.com/owner/repo/issues/1"
            )
        return f"/repos/{segment(parsed[0])}/{segment(parsed[1])}/issues/{parsed[2]}"

    @staticmethod
    def pull(api: ProviderAPI, url: str) -> str:
        parsed = parse_pull_url(url, api.base)
        if parsed is None:
            raise BlockExecutionError(
                "pr_url must be a GitHub pull request URL such as "
                "https://github.com/owner/repo/pull/1"
            )
        return f"/repos/{segment(parsed[0])}/{segment(parsed[1])}/pulls/{parsed[2]}"

    @staticmethod
    async def pages(
        api: ProviderAPI, path: str, limit: int, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Up to *limit* items of a page-numbered list (``per_page``/``page``)."""
        per_page = min(limit, 100)
        items: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            batch = await api.call(
                "GET", path, params={**(params or {}), "per_page": per_page, "page": page}
            )
            if isinstance(batch, dict):  # the search API wraps its list
                batch = batch.get("items", [])
            if not isinstance(batch, list):
                break
            items.extend(item for item in batch if isinstance(item, dict))
            if len(batch) < per_page or len(items) >= limit:
                break
        return items[:limit]


def _login(obj: Any) -> str:
    return str((obj or {}).get("login") or "") if isinstance(obj, dict) else ""


class GithubReadIssueBlock(GithubBlockBase):
    id = "b4a3c2f1-6e5d-4c8b-9a7f-0e1d2c3b4a59"
    effect = BlockEffect.READ
    description = "Reads a GitHub issue (title, body and author) from its URL."
    categories = frozenset({BlockCategory.DEVELOPER_TOOLS, BlockCategory.ISSUE_TRACKING})

    class Input(BlockSchemaInput):
        issue_url: str = SchemaField(
            description="URL of the issue, e.g. https://github.com/owner/repo/issues/1",
            max_length=2048,
        )
        credentials: CredentialsMetaInput = github_credentials_field()

    class Output(BlockSchemaOutput):
        title: str = SchemaField(description="Title of the issue")
        body: str = SchemaField(description="Body of the issue")
        user: str = SchemaField(description="Login of the issue's author")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        payload = await api.call("GET", self.issue(api, input_data.issue_url))
        yield "title", str(payload.get("title") or "")
        yield "body", str(payload.get("body") or "")
        yield "user", _login(payload.get("user"))


class GithubListIssuesBlock(GithubBlockBase):
    id = "af6e9c1b-452e-4f3c-8fd4-db49990e21c6"
    effect = BlockEffect.READ
    description = (
        "Lists the issues of a GitHub repository (open, closed or all), newest first, with "
        "number, title, state, author, labels and URL. Pull requests are left out."
    )
    categories = frozenset({BlockCategory.DEVELOPER_TOOLS, BlockCategory.ISSUE_TRACKING})

    class Input(BlockSchemaInput):
        repo_url: str = _repo_url_field()
        state: Literal["open", "closed", "all"] = SchemaField(
            default="open", description="Which issues to list"
        )
        limit: Integer = _limit_field()
        credentials: CredentialsMetaInput = github_credentials_field()

    class Output(BlockSchemaOutput):
        issues: list[dict[str, Any]] = SchemaField(
            description="Issues: number, title, state, user, labels, url"
        )

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        raw = await self.pages(
            api,
            self.repo(api, input_data.repo_url) + "/issues",
            input_data.limit,
            {"state": input_data.state},
        )
        yield (
            "issues",
            [
                {
                    "number": item.get("number"),
                    "title": str(item.get("title") or ""),
                    "state": item.get("state"),
                    "user": _login(item.get("user")),
                    "labels": [
                        str(label.get("name"))
                        for label in item.get("labels") or []
                        if isinstance(label, dict)
                    ],
                    "url": item.get("html_url"),
                }
                for item in raw
                if "pull_request" not in item
            ],
        )


class GithubMakeIssueBlock(GithubBlockBase):
    id = "caa307db-ec70-46ff-b383-9469e9efbcbc"
    effect = BlockEffect.WRITE
    description = (
        "Creates (opens, files) a new issue in a GitHub repository, such as a bug report or a "
        "feature request, with a title and body."
    )
    categories = frozenset({BlockCategory.DEVELOPER_TOOLS, BlockCategory.ISSUE_TRACKING})

    class Input(BlockSchemaInput):
        repo_url: str = _repo_url_field()
        title: str = SchemaField(description="Title of the issue", min_length=1, max_length=256)
        body: str = SchemaField(
            default="", description="Body of the issue (Markdown)", max_length=65_536
        )
        credentials: CredentialsMetaInput = github_credentials_field()

    class Output(BlockSchemaOutput):
        number: int = SchemaField(description="Number of the new issue")
        url: str = SchemaField(description="URL of the new issue")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        payload = await api.call(
            "POST",
            self.repo(api, input_data.repo_url) + "/issues",
            json={"title": input_data.title, "body": input_data.body},
        )
        yield "number", int(payload.get("number") or 0)
        yield "url", str(payload.get("html_url") or "")


class GithubCommentBlock(GithubBlockBase):
    id = "e4cb277c-a62c-435e-851f-d9f65ee59ea5"
    effect = BlockEffect.WRITE
    description = "Posts a comment on a GitHub issue or pull request."
    categories = frozenset({BlockCategory.DEVELOPER_TOOLS, BlockCategory.ISSUE_TRACKING})

    class Input(BlockSchemaInput):
        issue_url: str = SchemaField(
            description="URL of the issue or pull request, e.g. "
            "https://github.com/owner/repo/issues/1",
            max_length=2048,
        )
        comment: str = SchemaField(
            description="Text of the comment (Markdown)", min_length=1, max_length=65_536
        )
        credentials: CredentialsMetaInput = github_credentials_field()

    class Output(BlockSchemaOutput):
        id: int = SchemaField(description="Id of the comment")
        url: str = SchemaField(description="URL of the comment")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        payload = await api.call(
            "POST",
            self.issue(api, input_data.issue_url) + "/comments",
            json={"body": input_data.comment},
        )
        yield "id", int(payload.get("id") or 0)
        yield "url", str(payload.get("html_url") or "")


class GithubAddLabelBlock(GithubBlockBase):
    id = "ac4b7a8c-cbaa-43c6-98c6-dc5670607ce0"
    effect = BlockEffect.WRITE
    description = "Adds a label (such as bug or enhancement) to a GitHub issue or pull request."
    categories = frozenset({BlockCategory.DEVELOPER_TOOLS, BlockCategory.ISSUE_TRACKING})

    class Input(BlockSchemaInput):
        issue_url: str = SchemaField(
            description="URL of the issue or pull request", max_length=2048
        )
        label: str = SchemaField(description="Name of the label", min_length=1, max_length=100)
        credentials: CredentialsMetaInput = github_credentials_field()

    class Output(BlockSchemaOutput):
        status: str = SchemaField(description="Result of the operation")
        labels: list[str] = SchemaField(description="Labels now on the issue")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        payload = await api.call(
            "POST",
            self.issue(api, input_data.issue_url) + "/labels",
            json={"labels": [input_data.label]},
        )
        labels = payload if isinstance(payload, list) else []
        yield "status", "Label added successfully"
        yield "labels", [str(x.get("name")) for x in labels if isinstance(x, dict)]


def _pull_summary(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "number": item.get("number"),
        "title": str(item.get("title") or ""),
        "state": item.get("state"),
        "user": _login(item.get("user")),
        "head": str((item.get("head") or {}).get("ref") or ""),
        "base": str((item.get("base") or {}).get("ref") or ""),
        "draft": bool(item.get("draft")),
        "url": item.get("html_url"),
    }


class GithubListPullRequestsBlock(GithubBlockBase):
    id = "331fc84f-ab88-4040-8dd0-f49f7e34e41b"
    effect = BlockEffect.READ
    description = (
        "Lists the pull requests (PRs) of a GitHub repository with number, title, author, "
        "head and base branch and URL."
    )

    class Input(BlockSchemaInput):
        repo_url: str = _repo_url_field()
        state: Literal["open", "closed", "all"] = SchemaField(
            default="open", description="Which pull requests to list"
        )
        limit: Integer = _limit_field()
        credentials: CredentialsMetaInput = github_credentials_field()

    class Output(BlockSchemaOutput):
        pull_requests: list[dict[str, Any]] = SchemaField(
            description="Pull requests: number, title, state, user, head, base, draft, url"
        )

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        raw = await self.pages(
            api,
            self.repo(api, input_data.repo_url) + "/pulls",
            input_data.limit,
            {"state": input_data.state},
        )
        yield "pull_requests", [_pull_summary(item) for item in raw]


class GithubReadPullRequestBlock(GithubBlockBase):
    id = "2b5d0f30-7c11-49b8-ba37-2905197fd6e7"
    effect = BlockEffect.READ
    description = (
        "Reads a GitHub pull request: title, description, author, branches, merge state and, "
        "optionally, the changed files with their diffs (for reviewing a PR)."
    )

    class Input(BlockSchemaInput):
        pr_url: str = SchemaField(
            description="URL of the pull request, e.g. https://github.com/owner/repo/pull/1",
            max_length=2048,
        )
        include_pr_changes: bool = SchemaField(
            default=False, description="Also return the diff of each changed file"
        )
        credentials: CredentialsMetaInput = github_credentials_field()

    class Output(BlockSchemaOutput):
        title: str = SchemaField(description="Title of the pull request")
        body: str = SchemaField(description="Description of the pull request")
        author: str = SchemaField(description="Login of the author")
        state: str = SchemaField(description="open or closed")
        merged: bool = SchemaField(description="Whether it has been merged")
        head: str = SchemaField(description="Branch with the changes")
        base: str = SchemaField(description="Branch it merges into")
        changes: str = SchemaField(description="Per-file diffs (empty unless asked for)")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        path = self.pull(api, input_data.pr_url)
        pr = await api.call("GET", path)
        changes = ""
        if input_data.include_pr_changes:
            files = await self.pages(api, path + "/files", 300)
            changes = trim(
                "\n\n".join(
                    f"{f.get('filename')} ({f.get('status')}, +{f.get('additions', 0)} "
                    f"-{f.get('deletions', 0)})\n{f.get('patch') or ''}"
                    for f in files
                ),
                MAX_DIFF_CHARS,
            )
        summary = _pull_summary(pr)
        yield "title", summary["title"]
        yield "body", str(pr.get("body") or "")
        yield "author", summary["user"]
        yield "state", str(pr.get("state") or "")
        yield "merged", bool(pr.get("merged"))
        yield "head", summary["head"]
        yield "base", summary["base"]
        yield "changes", changes


class GithubMakePullRequestBlock(GithubBlockBase):
    id = "052f89e8-a165-4a8c-909f-bd0c42720e74"
    effect = BlockEffect.WRITE
    description = (
        "Opens a pull request in a GitHub repository from a head branch into a base branch."
    )

    class Input(BlockSchemaInput):
        repo_url: str = _repo_url_field()
        title: str = SchemaField(
            description="Title of the pull request", min_length=1, max_length=256
        )
        body: str = SchemaField(
            default="", description="Description of the pull request (Markdown)", max_length=65_536
        )
        head: str = SchemaField(
            description="Branch with the changes (owner:branch for a fork)",
            min_length=1,
            max_length=255,
        )
        base: str = SchemaField(
            description="Branch to merge into, e.g. main", min_length=1, max_length=255
        )
        credentials: CredentialsMetaInput = github_credentials_field()

    class Output(BlockSchemaOutput):
        number: int = SchemaField(description="Number of the new pull request")
        url: str = SchemaField(description="URL of the new pull request")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        payload = await api.call(
            "POST",
            self.repo(api, input_data.repo_url) + "/pulls",
            json={
                "title": input_data.title,
                "body": input_data.body,
                "head": input_data.head,
                "base": input_data.base,
            },
        )
        yield "number", int(payload.get("number") or 0)
        yield "url", str(payload.get("html_url") or "")


class GithubMergePullRequestBlock(GithubBlockBase):
    id = "15b20937-570a-4b44-b85c-31abe98277ea"
    effect = BlockEffect.DESTRUCTIVE
    description = (
        "Merges a GitHub pull request into its base branch (merge commit, squash or rebase). "
        "This changes the base branch and cannot simply be undone."
    )

    class Input(BlockSchemaInput):
        pr_url: str = SchemaField(description="URL of the pull request to merge", max_length=2048)
        merge_method: Literal["merge", "squash", "rebase"] = SchemaField(
            default="merge", description="How to merge"
        )
        commit_title: str = SchemaField(
            default="", description="Title of the merge commit (default: GitHub's)", max_length=256
        )
        commit_message: str = SchemaField(
            default="", description="Extra text of the merge commit", max_length=65_536
        )
        credentials: CredentialsMetaInput = github_credentials_field()

    class Output(BlockSchemaOutput):
        merged: bool = SchemaField(description="Whether the pull request was merged")
        sha: str = SchemaField(description="SHA of the merge commit")
        message: str = SchemaField(description="GitHub's message")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        body: dict[str, Any] = {"merge_method": input_data.merge_method}
        if input_data.commit_title:
            body["commit_title"] = input_data.commit_title
        if input_data.commit_message:
            body["commit_message"] = input_data.commit_message
        payload = await api.call("PUT", self.pull(api, input_data.pr_url) + "/merge", json=body)
        yield "merged", bool(payload.get("merged"))
        yield "sha", str(payload.get("sha") or "")
        yield "message", str(payload.get("message") or "")


class GithubReadFileBlock(GithubBlockBase):
    id = "9a459f60-716d-4a53-bbf1-d3cbfc536aae"
    effect = BlockEffect.READ
    description = "Reads the text content of a file in a GitHub repository (on a branch)."

    class Input(BlockSchemaInput):
        repo_url: str = _repo_url_field()
        file_path: str = SchemaField(
            description="Path of the file in the repository, e.g. src/app.py", max_length=1024
        )
        branch: str = SchemaField(
            default="",
            description="Branch, tag or commit (default branch if empty)",
            max_length=255,
        )
        credentials: CredentialsMetaInput = github_credentials_field()

    class Output(BlockSchemaOutput):
        text_content: str = SchemaField(description="Content of the file as text")
        size: int = SchemaField(description="Size of the file in bytes")
        sha: str = SchemaField(description="Blob SHA of the file (needed to update it)")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        path = f"{self.repo(api, input_data.repo_url)}/contents/{_file_path(input_data.file_path)}"
        payload = await api.call("GET", path, params={"ref": input_data.branch or None})
        if not isinstance(payload, dict) or payload.get("type") != "file":
            raise BlockExecutionError(f"{input_data.file_path} is a directory, not a file")
        try:
            raw = base64.b64decode(str(payload.get("content") or ""))
        except ValueError:
            raw = b""
        yield "text_content", trim(raw.decode("utf-8", errors="replace"), MAX_FILE_CHARS)
        yield "size", int(payload.get("size") or len(raw))
        yield "sha", str(payload.get("sha") or "")


class _GithubWriteFileBlockBase(GithubBlockBase):
    class Input(BlockSchemaInput):
        repo_url: str = _repo_url_field()
        file_path: str = SchemaField(
            description="Path of the file in the repository, e.g. docs/notes.md", max_length=1024
        )
        content: str = SchemaField(description="New text content of the file", max_length=1_000_000)
        branch: str = SchemaField(
            default="", description="Branch to commit to (default branch if empty)", max_length=255
        )
        commit_message: str = SchemaField(
            default="", description="Commit message (a default one if empty)", max_length=10_000
        )
        credentials: CredentialsMetaInput = github_credentials_field()

    class Output(BlockSchemaOutput):
        url: str = SchemaField(description="URL of the file on GitHub")
        sha: str = SchemaField(description="SHA of the commit")

    async def write(
        self, api: ProviderAPI, input_data: Input, *, existing_sha: str | None, verb: str
    ) -> BlockOutput:
        path = f"{self.repo(api, input_data.repo_url)}/contents/{_file_path(input_data.file_path)}"
        body: dict[str, Any] = {
            "message": input_data.commit_message or f"{verb} {input_data.file_path}",
            "content": base64.b64encode(input_data.content.encode()).decode(),
        }
        if input_data.branch:
            body["branch"] = input_data.branch
        if existing_sha:
            body["sha"] = existing_sha
        payload = await api.call("PUT", path, json=body)
        yield "url", str((payload.get("content") or {}).get("html_url") or "")
        yield "sha", str((payload.get("commit") or {}).get("sha") or "")


class GithubCreateFileBlock(_GithubWriteFileBlockBase):
    id = "bb2d9777-da25-465a-9709-e1d16a16ca45"
    effect = BlockEffect.WRITE
    description = (
        "Creates a new file in a GitHub repository with the given text and commits it to a "
        "branch. Fails if the file already exists (use GithubUpdateFileBlock)."
    )

    async def call(self, api: ProviderAPI, input_data: Any) -> BlockOutput:
        async for output in self.write(api, input_data, existing_sha=None, verb="Create"):
            yield output


class GithubUpdateFileBlock(_GithubWriteFileBlockBase):
    id = "11452b99-e74c-4bb8-8c9c-b283629aad0b"
    effect = BlockEffect.WRITE
    description = (
        "Replaces the content of an existing file in a GitHub repository and commits the change "
        "to a branch (the old version stays in the history)."
    )

    async def call(self, api: ProviderAPI, input_data: Any) -> BlockOutput:
        path = f"{self.repo(api, input_data.repo_url)}/contents/{_file_path(input_data.file_path)}"
        current = await api.call("GET", path, params={"ref": input_data.branch or None})
        sha = current.get("sha") if isinstance(current, dict) else None
        if not sha:
            raise BlockExecutionError(f"{input_data.file_path} is not a file")
        async for output in self.write(api, input_data, existing_sha=str(sha), verb="Update"):
            yield output


class GithubSearchCodeBlock(GithubBlockBase):
    id = "9b308d04-f208-45cd-99ae-a6ddc6ee9e9e"
    effect = BlockEffect.READ
    description = (
        "Searches source code on GitHub, optionally within one repository, and returns the "
        "matching files (path, repository, URL)."
    )
    categories = frozenset({BlockCategory.DEVELOPER_TOOLS, BlockCategory.SEARCH})

    class Input(BlockSchemaInput):
        query: str = SchemaField(
            description="What to search for, e.g. 'def parse_config' or 'TODO language:python'",
            min_length=1,
            max_length=256,
        )
        repo_url: str = SchemaField(
            default="", description="Only search this repository (owner/repo)", max_length=2048
        )
        limit: Integer = _limit_field(20)
        credentials: CredentialsMetaInput = github_credentials_field()

    class Output(BlockSchemaOutput):
        results: list[dict[str, Any]] = SchemaField(
            description="Matching files: path, repository, url"
        )

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        query = input_data.query
        if input_data.repo_url:
            parsed = parse_repo_url(input_data.repo_url, api.base)
            if parsed is None:
                raise BlockExecutionError("repo_url must be a GitHub repository such as owner/repo")
            query += f" repo:{parsed[0]}/{parsed[1]}"
        raw = await self.pages(api, "/search/code", input_data.limit, {"q": query})
        yield (
            "results",
            [
                {
                    "path": item.get("path"),
                    "repository": str((item.get("repository") or {}).get("full_name") or ""),
                    "url": item.get("html_url"),
                }
                for item in raw
            ],
        )


class GithubGetRepositoryInfoBlock(GithubBlockBase):
    id = "86f8abf5-7042-49e6-8ed1-5bc1b5c9d1fd"
    effect = BlockEffect.READ
    description = (
        "Gets information about a GitHub repository: description, default branch, stars, "
        "forks, open issues, main language, visibility and URL."
    )

    class Input(BlockSchemaInput):
        repo_url: str = _repo_url_field()
        credentials: CredentialsMetaInput = github_credentials_field()

    class Output(BlockSchemaOutput):
        name: str = SchemaField(description="Repository name")
        full_name: str = SchemaField(description="owner/name")
        description: str = SchemaField(description="Description")
        default_branch: str = SchemaField(description="Default branch")
        stars: int = SchemaField(description="Stargazers")
        forks: int = SchemaField(description="Forks")
        open_issues: int = SchemaField(description="Open issues and pull requests")
        language: str = SchemaField(description="Main language")
        private: bool = SchemaField(description="Whether the repository is private")
        url: str = SchemaField(description="URL of the repository")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        repo = await api.call("GET", self.repo(api, input_data.repo_url))
        yield "name", str(repo.get("name") or "")
        yield "full_name", str(repo.get("full_name") or "")
        yield "description", str(repo.get("description") or "")
        yield "default_branch", str(repo.get("default_branch") or "")
        yield "stars", int(repo.get("stargazers_count") or 0)
        yield "forks", int(repo.get("forks_count") or 0)
        yield "open_issues", int(repo.get("open_issues_count") or 0)
        yield "language", str(repo.get("language") or "")
        yield "private", bool(repo.get("private"))
        yield "url", str(repo.get("html_url") or "")


class GithubListBranchesBlock(GithubBlockBase):
    id = "86e3500f-f8c8-482c-8c67-12785bf8c612"
    effect = BlockEffect.READ
    description = "Lists the branches of a GitHub repository with their latest commit."

    class Input(BlockSchemaInput):
        repo_url: str = _repo_url_field()
        limit: Integer = _limit_field(100)
        credentials: CredentialsMetaInput = github_credentials_field()

    class Output(BlockSchemaOutput):
        branches: list[dict[str, Any]] = SchemaField(description="Branches: name, sha, protected")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        raw = await self.pages(
            api, self.repo(api, input_data.repo_url) + "/branches", input_data.limit
        )
        yield (
            "branches",
            [
                {
                    "name": item.get("name"),
                    "sha": str((item.get("commit") or {}).get("sha") or ""),
                    "protected": bool(item.get("protected")),
                }
                for item in raw
            ],
        )
