"""Todoist blocks over the REST API v2 (https://developer.todoist.com/rest/v2).

A personal API token or an OAuth connection goes as ``Authorization: Bearer``; OAuth
scopes are ``data:read`` to read and ``data:read_write`` to change tasks.
"""

from __future__ import annotations

import re
from typing import Any

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.library._provider_api import Provider, trim
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import APIKeyCredentials, CredentialsMetaInput, OAuth2Credentials
from blockpilot.executions.context import ExecutionContext

TODOIST = Provider.known("todoist")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
READ, WRITE = "data:read", "data:read_write"

TodoistCredentials = APIKeyCredentials | OAuth2Credentials


def _credentials(scope: str) -> Any:
    return CredentialsField(
        providers=["todoist"],
        supported_types=["api_key", "oauth2"],
        required_scopes=[scope],
        description="Todoist API token (Settings → Integrations → Developer) or connected account",
    )


def _id(value: str, what: str) -> str:
    text = value.strip()
    if not _ID.match(text):
        raise ValueError(f"{what} must be a Todoist ID (letters and digits), not {text[:40]!r}")
    return text


async def _todoist(
    context: ExecutionContext,
    credentials: TodoistCredentials,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    json: Any = None,
) -> Any:
    return await TODOIST.call(
        context,
        method,
        path,
        auth={"Authorization": credentials.auth_header()},
        params=params,
        json=json,
    )


def _task(task: dict[str, Any]) -> dict[str, Any]:
    due = task.get("due") or {}
    return {
        "id": task.get("id"),
        "content": trim(task.get("content"), 500),
        "description": trim(task.get("description"), 2000),
        "project_id": task.get("project_id"),
        "priority": task.get("priority"),
        "labels": task.get("labels") or [],
        "due": due.get("datetime") or due.get("date") or "",
        "due_string": due.get("string") or "",
        "is_completed": bool(task.get("is_completed")),
        "url": task.get("url") or "",
    }


class _TaskFields(BlockSchemaInput):
    description: str = SchemaField(
        default="", description="Longer task description", max_length=16_000
    )
    due_string: str = SchemaField(
        default="", description="Due date in words, e.g. 'tomorrow at 9am' or 'every monday'"
    )
    due_date: str = SchemaField(default="", description="Due date as YYYY-MM-DD")
    priority: Integer = SchemaField(
        default=0, ge=0, le=4, description="Priority 1 (normal) to 4 (urgent); 0 leaves it as is"
    )
    labels: list[str] = SchemaField(default_factory=list, description="Label names", max_length=50)


def _task_body(data: _TaskFields) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in ("description", "due_string", "due_date"):
        if getattr(data, key):
            body[key] = getattr(data, key)
    if data.priority:
        body["priority"] = data.priority
    if data.labels:
        body["labels"] = data.labels
    return body


class TodoistListProjectsBlock(Block):
    id = "c7a1e5d3-4b98-4f26-8e0a-2d6b9c3f1a74"
    effect = BlockEffect.READ
    description = "Lists the user's Todoist projects (ID, name, favourite, inbox)."
    categories = frozenset({BlockCategory.PRODUCTIVITY})

    class Input(BlockSchemaInput):
        limit: Integer = SchemaField(default=200, ge=1, le=1000, description="Most projects")
        credentials: CredentialsMetaInput = _credentials(READ)

    class Output(BlockSchemaOutput):
        projects: list[dict[str, Any]] = SchemaField(description="Projects: id, name, url…")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: TodoistCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        projects = await _todoist(execution_context, credentials, "GET", "/projects")
        yield (
            "projects",
            [
                {
                    "id": p.get("id"),
                    "name": p.get("name"),
                    "parent_id": p.get("parent_id"),
                    "is_favorite": bool(p.get("is_favorite")),
                    "is_inbox_project": bool(p.get("is_inbox_project")),
                    "url": p.get("url") or "",
                }
                for p in (projects or [])[: input_data.limit]
                if isinstance(p, dict)
            ],
        )


class TodoistGetTasksBlock(Block):
    id = "1e8d4b7f-9c25-4a63-b0f1-7a3e5d2c8b96"
    effect = BlockEffect.READ
    description = (
        "Gets the open tasks of Todoist, optionally of one project or matching a Todoist filter "
        "such as 'today | overdue'."
    )
    categories = frozenset({BlockCategory.PRODUCTIVITY})

    class Input(BlockSchemaInput):
        project_id: str = SchemaField(default="", description="Only tasks of this project")
        filter: str = SchemaField(
            default="", description="Todoist filter query, e.g. 'today', 'p1', '#Work & overdue'"
        )
        label: str = SchemaField(default="", description="Only tasks with this label")
        limit: Integer = SchemaField(default=100, ge=1, le=1000, description="Most tasks")
        credentials: CredentialsMetaInput = _credentials(READ)

    class Output(BlockSchemaOutput):
        tasks: list[dict[str, Any]] = SchemaField(description="Tasks: id, content, due, priority…")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: TodoistCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        params = {
            "project_id": _id(input_data.project_id, "project_id")
            if input_data.project_id
            else None,
            "filter": input_data.filter or None,
            "label": input_data.label or None,
        }
        tasks = await _todoist(execution_context, credentials, "GET", "/tasks", params=params)
        yield "tasks", [_task(t) for t in (tasks or [])[: input_data.limit] if isinstance(t, dict)]


class TodoistCreateTaskBlock(Block):
    id = "5b2f9e6a-3d71-4c84-a9e2-0f6c1b8d4a37"
    effect = BlockEffect.WRITE
    description = "Creates a task in Todoist, with optional due date, priority, labels and project."
    categories = frozenset({BlockCategory.PRODUCTIVITY})

    class Input(_TaskFields):
        content: str = SchemaField(description="The task's title", min_length=1, max_length=500)
        project_id: str = SchemaField(default="", description="Project ID; the Inbox if empty")
        credentials: CredentialsMetaInput = _credentials(WRITE)

    class Output(BlockSchemaOutput):
        id: str = SchemaField(description="ID of the new task")
        url: str = SchemaField(description="Link to the task")
        task: dict[str, Any] = SchemaField(description="The task as Todoist stored it")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: TodoistCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        body = {"content": input_data.content, **_task_body(input_data)}
        if input_data.project_id:
            body["project_id"] = _id(input_data.project_id, "project_id")
        task = _task(await _todoist(execution_context, credentials, "POST", "/tasks", json=body))
        yield "id", str(task["id"] or "")
        yield "url", task["url"]
        yield "task", task


class TodoistUpdateTaskBlock(Block):
    id = "9a6c3f1d-8e42-4b57-b3d9-4e7a2c5f0b18"
    effect = BlockEffect.WRITE
    description = (
        "Updates a Todoist task: its title, description, due date, priority or labels "
        "(empty fields stay as they are)."
    )
    categories = frozenset({BlockCategory.PRODUCTIVITY})

    class Input(_TaskFields):
        task_id: str = SchemaField(
            description="ID of the task to change", min_length=1, max_length=64
        )
        content: str = SchemaField(default="", description="New title", max_length=500)
        credentials: CredentialsMetaInput = _credentials(WRITE)

    class Output(BlockSchemaOutput):
        success: bool = SchemaField(description="True when Todoist saved the change")
        task: dict[str, Any] = SchemaField(description="The task after the change")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: TodoistCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        body = _task_body(input_data)
        if input_data.content:
            body["content"] = input_data.content
        if not body:
            yield "error", "Nothing to change: give content, description, due, priority or labels"
            return
        path = f"/tasks/{_id(input_data.task_id, 'task_id')}"
        task = await _todoist(execution_context, credentials, "POST", path, json=body)
        yield "success", True
        yield "task", _task(task if isinstance(task, dict) else {})


class TodoistCloseTaskBlock(Block):
    id = "3f7b1d9e-6a24-4c08-8b5f-1d9e3a7c6b42"
    effect = BlockEffect.WRITE
    description = "Completes (closes) a Todoist task; a recurring task moves to its next date."
    categories = frozenset({BlockCategory.PRODUCTIVITY})

    class Input(BlockSchemaInput):
        task_id: str = SchemaField(
            description="ID of the task to complete", min_length=1, max_length=64
        )
        credentials: CredentialsMetaInput = _credentials(WRITE)

    class Output(BlockSchemaOutput):
        success: bool = SchemaField(description="True when the task was closed")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: TodoistCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        path = f"/tasks/{_id(input_data.task_id, 'task_id')}/close"
        await _todoist(execution_context, credentials, "POST", path)
        yield "success", True
