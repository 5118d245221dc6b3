"""A fake Todoist REST API v2: projects and tasks.

As Todoist does it: ``Authorization: Bearer <token>``; errors are plain text (401
``Unauthorized``… 404 ``Task not found``); closing a task answers 204 with no body.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from ._http import LOCALHOST, LocalHTTPServer, RecordedRequest, Response, _bearer_token


class FakeTodoist(LocalHTTPServer):
    """``base_url`` is the equivalent of ``https://api.todoist.com/rest/v2``.

    Projects come from :meth:`add_project`, tasks from :meth:`add_task` or the API;
    :attr:`tasks` holds every task by id (closed ones with ``is_completed``).
    """

    def __init__(self, tokens: Iterable[str] | None = None, *, host: str = LOCALHOST) -> None:
        super().__init__(host=host)
        self._tokens = set(tokens or ())
        self.projects: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(7_000_000_001)
        self.add_route("GET", "/rest/v2/projects", self._projects)
        self.add_route("GET", "/rest/v2/tasks", self._list_tasks)
        self.add_route("POST", "/rest/v2/tasks", self._create)
        self.add_route("POST", "/rest/v2/tasks/{task_id}", self._update)
        self.add_route("POST", "/rest/v2/tasks/{task_id}/close", self._close)

    @property
    def base_url(self) -> str:
        return self.origin + "/rest/v2"

    def _next_id(self) -> str:
        with self._lock:
            return str(next(self._ids))

    def add_project(self, name: str, *, inbox: bool = False) -> str:
        pid = self._next_id()
        with self._lock:
            self.projects[pid] = {
                "id": pid,
                "name": name,
                "color": "charcoal",
                "parent_id": None,
                "order": len(self.projects),
                "comment_count": 0,
                "is_shared": False,
                "is_favorite": False,
                "is_inbox_project": inbox,
                "is_team_inbox": False,
                "view_style": "list",
                "url": f"https://todoist.com/showProject?id={pid}",
            }
        return pid

    def add_task(self, content: str, project_id: str, **extra: Any) -> dict[str, Any]:
        tid = self._next_id()
        due_string = extra.pop("due_string", None)
        task = {
            "id": tid,
            "project_id": project_id,
            "section_id": None,
            "content": content,
            "description": extra.pop("description", ""),
            "is_completed": False,
            "labels": extra.pop("labels", []),
            "priority": extra.pop("priority", 1),
            "due": {"string": due_string, "date": "2026-12-07", "is_recurring": False}
            if due_string
            else None,
            "url": f"https://todoist.com/showTask?id={tid}",
            "created_at": "2026-12-06T10:00:00.000000Z",
        }
        with self._lock:
            self.tasks[tid] = task
        return dict(task)

    def rate_limit(self) -> None:
        self.queue_response(Response.text("Too Many Requests", 429, {"Retry-After": "12"}))

    def _auth(self, request: RecordedRequest) -> Response | None:
        if _bearer_token(request) not in self._tokens:
            return Response.text("Unauthorized", 401)
        return None

    def _projects(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        with self._lock:
            return Response.json(list(self.projects.values()))

    def _list_tasks(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        query = request.query
        with self._lock:
            tasks = [t for t in self.tasks.values() if not t["is_completed"]]
        if query.get("project_id"):
            if query["project_id"] not in self.projects:
                return Response.text("Project not found", 404)
            tasks = [t for t in tasks if t["project_id"] == query["project_id"]]
        if query.get("label"):
            tasks = [t for t in tasks if query["label"] in t["labels"]]
        if query.get("filter"):
            if query["filter"] not in ("today", "p1"):
                return Response.text(f"Invalid filter: {query['filter']}", 400)
            tasks = [t for t in tasks if t["priority"] == 4 or t["due"]]
        return Response.json(tasks)

    def _create(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        body = request.json()
        if not body.get("content"):
            return Response.text("Argument content is missing", 400)
        project = body.pop("project_id", None) or next(
            (p for p, v in self.projects.items() if v["is_inbox_project"]), ""
        )
        return Response.json(self.add_task(body.pop("content"), project, **body))

    def _update(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        body = request.json()
        with self._lock:
            task = self.tasks.get(params["task_id"])
            if task is None:
                return Response.text("Task not found", 404)
            for key in ("content", "description", "priority", "labels"):
                if key in body:
                    task[key] = body[key]
            if "due_string" in body:
                task["due"] = {"string": body["due_string"], "date": "2026-12-08"}
            return Response.json(dict(task))

    def _close(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        with self._lock:
            task = self.tasks.get(params["task_id"])
            if task is None:
                return Response.text("Task not found", 404)
            task["is_completed"] = True
        return Response(204)
