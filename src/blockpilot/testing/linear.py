"""A fake Linear GraphQL API (``POST /graphql``) for the operations the Linear blocks send:
``searchIssues``, ``issues(filter:)``, ``teams``/``projects`` by name, ``issueCreate`` and
``commentCreate``, with Relay pagination and GraphQL-shaped errors.

It recognises an operation by its root field rather than parsing GraphQL in full; variables
are honoured as Linear documents them. Personal API keys come as ``Authorization: <key>``,
OAuth tokens as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

from ._http import LOCALHOST, RecordedRequest, Response
from ._provider import TokenAPIServer, page_of


def _error(message: str, code: str, status: int = 400) -> dict[str, Any]:
    return {
        "errors": [
            {
                "message": message,
                "extensions": {
                    "code": code,
                    "statusCode": status,
                    "userPresentableMessage": message,
                },
            }
        ]
    }


class FakeLinear(TokenAPIServer):
    """Linear's GraphQL endpoint with teams, projects, issues and comments in memory."""

    def __init__(self, tokens: Iterable[str] | None = None, *, host: str = LOCALHOST) -> None:
        super().__init__(tokens=tokens, host=host)
        self.teams: list[dict[str, Any]] = []
        self.projects: list[dict[str, Any]] = []
        self.issues: list[dict[str, Any]] = []
        self.comments: list[dict[str, Any]] = []
        self.add_route("POST", "/graphql", self._graphql)

    # -- data -------------------------------------------------------------------------

    def add_team(self, name: str, key: str) -> str:
        team = {"id": str(uuid.uuid4()), "name": name, "key": key}
        with self._lock:
            self.teams.append(team)
        return team["id"]

    def add_project(self, name: str) -> str:
        project = {"id": str(uuid.uuid4()), "name": name}
        with self._lock:
            self.projects.append(project)
        return project["id"]

    def add_issue(
        self,
        team_key: str,
        title: str,
        *,
        description: str = "",
        state: str = "Todo",
        project: str | None = None,
        priority: int = 0,
    ) -> dict[str, Any]:
        with self._lock:
            number = 1 + sum(1 for i in self.issues if i["team"]["key"] == team_key)
            issue = {
                "id": str(uuid.uuid4()),
                "identifier": f"{team_key}-{number}",
                "title": title,
                "description": description,
                "url": f"https://linear.app/acme/issue/{team_key}-{number}",
                "priority": priority,
                "state": {"name": state},
                "assignee": None,
                "project": {"name": project} if project else None,
                "team": {"key": team_key},
            }
            self.issues.append(issue)
        return issue

    # -- protocol ---------------------------------------------------------------------

    def presented_token(self, request: RecordedRequest) -> str | None:
        value = (request.header("authorization") or "").strip()
        if value.lower().startswith("bearer "):
            value = value[7:].strip()
        return value or None

    def error_response(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        code = {401: "AUTHENTICATION_ERROR", 429: "RATELIMITED"}.get(status, "INTERNAL_ERROR")
        return Response.json(_error(message, code, status), status, headers=headers)

    def rate_limit_next(self, retry_after: int = 30) -> None:
        """Linear answers an exhausted limit with HTTP 400 and the ``RATELIMITED`` code."""
        self.queue_response(Response.json(_error("Rate limit exceeded", "RATELIMITED", 429), 400))

    def _connection(self, nodes: list[dict[str, Any]], variables: dict[str, Any]) -> dict[str, Any]:
        start = int(variables.get("after") or 0)
        chunk, nxt = page_of(nodes, start, max(1, min(250, int(variables.get("first") or 50))))
        return {
            "nodes": chunk,
            "pageInfo": {
                "hasNextPage": nxt is not None,
                "endCursor": str(nxt if nxt is not None else start + len(chunk)),
            },
        }

    @staticmethod
    def _eq(value: str | None, condition: Any) -> bool:
        wanted = ((condition or {}).get("name") or {}).get("eqIgnoreCase")
        return wanted is None or (value or "").lower() == str(wanted).lower()

    def _graphql(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        if self.authenticate(request) is not None:
            return Response.json(
                _error("Authentication required, not authenticated", "AUTHENTICATION_ERROR", 401),
                400,
            )
        try:
            body = request.json()
            query, variables = str(body["query"]), dict(body.get("variables") or {})
        except (ValueError, KeyError, TypeError):
            return Response.json(_error("Must provide query string.", "BAD_USER_INPUT"), 400)
        root = re.search(r"\{\s*(\w+)\s*\(", query)
        field = root.group(1) if root else ""
        handlers = {
            "searchIssues": self._search,
            "issues": self._issues,
            "teams": lambda v: self._by_name("teams", self.teams, v),
            "projects": lambda v: self._by_name("projects", self.projects, v),
            "issueCreate": self._create_issue,
            "commentCreate": self._create_comment,
        }
        handler = handlers.get(field)
        if handler is None:
            message = f'Cannot query field "{field}" on type "Query".'
            return Response.json(_error(message, "GRAPHQL_VALIDATION_FAILED"), 400)
        with self._lock:  # re-entrant: handlers may add data
            result = handler(variables)
        if "errors" in result:
            return Response.json(result)  # GraphQL: the error rides in a 200
        return Response.json({"data": result})

    def _by_name(
        self, field: str, items: list[dict[str, Any]], variables: dict[str, Any]
    ) -> dict[str, Any]:
        condition = {"name": {"eqIgnoreCase": variables.get("name")}}
        return {field: {"nodes": [x for x in items if self._eq(x["name"], condition)]}}

    def _search(self, variables: dict[str, Any]) -> dict[str, Any]:
        term = str(variables.get("term") or "").lower()
        found = [i for i in self.issues if term in f"{i['title']} {i['description']}".lower()]
        return {"searchIssues": self._connection(found, variables)}

    def _issues(self, variables: dict[str, Any]) -> dict[str, Any]:
        condition = variables.get("filter") or {}
        found = [
            i
            for i in self.issues
            if self._eq((i["project"] or {}).get("name"), condition.get("project"))
            and self._eq(i["state"]["name"], condition.get("state"))
        ]
        return {"issues": self._connection(found, variables)}

    def _create_issue(self, variables: dict[str, Any]) -> dict[str, Any]:
        data = variables.get("input") or {}
        team = next((t for t in self.teams if t["id"] == data.get("teamId")), None)
        if team is None or not data.get("title"):
            return _error("Argument Validation Error", "INVALID_INPUT")
        project = next((p for p in self.projects if p["id"] == data.get("projectId")), None)
        issue = self.add_issue(
            team["key"],
            str(data["title"]),
            description=str(data.get("description") or ""),
            project=project["name"] if project else None,
            priority=int(data.get("priority") or 0),
        )
        return {"issueCreate": {"success": True, "issue": issue}}

    def _create_comment(self, variables: dict[str, Any]) -> dict[str, Any]:
        data = variables.get("input") or {}
        issue_ref = str(data.get("issueId") or "")
        issue = next((i for i in self.issues if issue_ref in (i["id"], i["identifier"])), None)
        if issue is None:
            return _error("Entity not found: Issue", "INVALID_INPUT")
        comment = {
            "id": str(uuid.uuid4()),
            "body": str(data.get("body") or ""),
            "issue": issue["id"],
        }
        self.comments.append(comment)
        return {"commentCreate": {"success": True, "comment": comment}}
