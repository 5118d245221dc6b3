"""A fake Jira Cloud REST API v3: enhanced JQL search (``nextPageToken``), create issue and
add comment, with Basic ``email:api_token`` auth and Jira's ``errorMessages`` errors."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Any

from ._http import LOCALHOST, RecordedRequest, Response
from ._provider import TokenAPIServer, page_of

_CLAUSE = re.compile(r'^\s*(\w+)\s*(=|~)\s*"?([^"]*?)"?\s*$')


def basic_auth(email: str, token: str) -> str:
    """The ``Authorization`` value Jira Cloud expects for an API token."""
    return "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()


def _adf_text(doc: Any) -> str:
    if isinstance(doc, dict):
        if doc.get("type") == "text":
            return str(doc.get("text") or "")
        parts = [_adf_text(c) for c in doc.get("content") or []]
        return ("\n" if doc.get("type") == "doc" else "").join(parts)
    return ""


class FakeJira(TokenAPIServer):
    """``GET /rest/api/3/search/jql``, ``POST /rest/api/3/issue`` and
    ``POST /rest/api/3/issue/{key}/comment``. ``tokens`` are API tokens; each request must
    carry ``Authorization: Basic base64(email:token)``. JQL understands ``field = value`` and
    ``field ~ text`` clauses joined by ``AND`` (project, status, summary, text)."""

    def __init__(
        self,
        tokens: Iterable[str] | None = None,
        *,
        projects: Iterable[str] = ("ENG",),
        host: str = LOCALHOST,
    ) -> None:
        super().__init__(tokens=tokens, host=host)
        self.projects = set(projects)
        self.issues: list[dict[str, Any]] = []
        self.comments: list[dict[str, Any]] = []
        self.add_route("GET", "/rest/api/3/search/jql", self._search)
        self.add_route("POST", "/rest/api/3/issue", self._create)
        self.add_route("POST", "/rest/api/3/issue/{key}/comment", self._comment)

    def add_issue(
        self, project: str, summary: str, *, status: str = "To Do", issue_type: str = "Task"
    ) -> dict[str, Any]:
        with self._lock:
            number = 1 + sum(1 for i in self.issues if i["key"].startswith(project + "-"))
            issue = {
                "id": str(10000 + len(self.issues)),
                "key": f"{project}-{number}",
                "self": self.url(f"/rest/api/3/issue/{10000 + len(self.issues)}"),
                "fields": {
                    "summary": summary,
                    "status": {"name": status},
                    "assignee": None,
                    "priority": {"name": "Medium"},
                    "issuetype": {"name": issue_type},
                    "updated": "2026-12-01T09:00:00.000+0000",
                    "description": None,
                },
            }
            self.issues.append(issue)
        return issue

    def presented_token(self, request: RecordedRequest) -> str | None:
        value = (request.header("authorization") or "").strip()
        if not value.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(value[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        email, sep, token = decoded.partition(":")
        return token if sep and email else None

    def error_response(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        return Response.json({"errorMessages": [message], "errors": {}}, status, headers=headers)

    def _auth(self, request: RecordedRequest) -> Response | None:
        if self.authenticate(request) is None:
            return None
        return self.error_response(401, "Client must be authenticated to access this resource.")

    def _matches(self, issue: dict[str, Any], field: str, op: str, value: str) -> bool:
        fields = issue["fields"]
        actual = {
            "project": issue["key"].split("-")[0],
            "status": fields["status"]["name"],
            "summary": fields["summary"],
            "text": fields["summary"],
            "key": issue["key"],
        }.get(field.lower())
        if actual is None:
            raise ValueError(field)
        return actual.lower() == value.lower() if op == "=" else value.lower() in actual.lower()

    def _search(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        denied = self._auth(request)
        if denied:
            return denied
        jql = request.query.get("jql", "")
        jql = re.split(r"\s+ORDER\s+BY\s+", jql, flags=re.I)[0]
        clauses = [c for c in re.split(r"\s+AND\s+", jql, flags=re.I) if c.strip()]
        parsed = [_CLAUSE.match(c) for c in clauses]
        if any(p is None for p in parsed):
            return self.error_response(400, "Error in the JQL Query: the query is not valid.")
        try:
            with self._lock:
                found = [
                    i
                    for i in self.issues
                    if all(self._matches(i, *p.groups()) for p in parsed if p is not None)
                ]
        except ValueError as exc:
            message = f"Field '{exc}' does not exist or you do not have permission to view it."
            return self.error_response(400, message)
        size = max(1, min(5000, int(request.query.get("maxResults", 50))))
        chunk, nxt = page_of(found, int(request.query.get("nextPageToken") or 0), size)
        body: dict[str, Any] = {"issues": chunk, "isLast": nxt is None}
        if nxt is not None:
            body["nextPageToken"] = str(nxt)
        return Response.json(body)

    def _create(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        denied = self._auth(request)
        if denied:
            return denied
        fields = (request.json() or {}).get("fields") or {}
        errors = {}
        project = (fields.get("project") or {}).get("key")
        if project not in self.projects:
            errors["project"] = "valid project is required"
        if not fields.get("summary"):
            errors["summary"] = "You must specify a summary of the issue."
        if (fields.get("issuetype") or {}).get("name") not in ("Task", "Bug", "Story", "Epic"):
            errors["issuetype"] = "Specify an issue type"
        if errors:
            return Response.json({"errorMessages": [], "errors": errors}, 400)
        issue = self.add_issue(
            str(project), str(fields["summary"]), issue_type=fields["issuetype"]["name"]
        )
        issue["fields"]["description"] = fields.get("description")
        return Response.json({"id": issue["id"], "key": issue["key"], "self": issue["self"]}, 201)

    def _comment(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        denied = self._auth(request)
        if denied:
            return denied
        with self._lock:
            issue = next((i for i in self.issues if i["key"] == params["key"]), None)
        if issue is None:
            message = "Issue does not exist or you do not have permission to see it."
            return self.error_response(404, message)
        body = (request.json() or {}).get("body")
        if not _adf_text(body).strip():
            empty = {"comment": "Comment body can not be empty!"}
            return Response.json({"errorMessages": [], "errors": empty}, 400)
        comment = {
            "id": str(20000 + len(self.comments)),
            "issue": issue["key"],
            "body": body,
            "text": _adf_text(body),
            "created": "2026-12-01T09:00:00.000+0000",
        }
        with self._lock:
            self.comments.append(comment)
        return Response.json(comment, 201)
