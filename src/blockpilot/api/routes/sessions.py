"""Chat sessions of the signed-in user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from blockpilot.api.deps import CurrentUser, PilotDep
from blockpilot.api.schemas import SessionInfo, SessionList

router = APIRouter(tags=["sessions"])


@router.post("/sessions", status_code=201, summary="Start a chat session")
async def create_session(user: CurrentUser, pilot: PilotDep) -> SessionInfo:
    session = await pilot.sessions.create(user.id)
    return SessionInfo(session_id=session.session_id, created_at=session.created_at)


@router.get("/sessions", summary="Your chat sessions, newest first")
async def list_sessions(
    user: CurrentUser, pilot: PilotDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> SessionList:
    sessions = await pilot.sessions.list(user.id, limit=limit)
    return SessionList(
        sessions=[SessionInfo(session_id=s.session_id, created_at=s.created_at) for s in sessions]
    )
