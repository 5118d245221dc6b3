"""Execution records of the signed-in user's block runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from blockpilot.api.deps import CurrentUser, PilotDep
from blockpilot.api.routes import error_responses
from blockpilot.api.schemas import ExecutionInfo, ExecutionList
from blockpilot.errors import ExecutionNotFoundError

router = APIRouter(tags=["executions"])


@router.get("/executions", summary="Your block executions, newest first")
async def list_executions(
    user: CurrentUser,
    pilot: PilotDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ExecutionList:
    records = await pilot.executions.list(user.id, limit=limit, offset=offset)
    return ExecutionList(executions=[ExecutionInfo.model_validate(r.public()) for r in records])


@router.get(
    "/executions/{execution_id}", summary="One of your executions", responses=error_responses(404)
)
async def get_execution(execution_id: str, user: CurrentUser, pilot: PilotDep) -> ExecutionInfo:
    record = await pilot.executions.get(user.id, execution_id)
    if record is None:
        raise ExecutionNotFoundError(f"Execution {execution_id[:80]!r} not found")
    return ExecutionInfo.model_validate(record.public())
