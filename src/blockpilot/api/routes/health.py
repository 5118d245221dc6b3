"""Liveness and readiness probes (no authentication)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from blockpilot.api.schemas import Health, Readiness

logger = logging.getLogger(__name__)

READINESS_TIMEOUT_SECONDS = 5.0

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="The service can reach its database",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is unreachable"}},
)
async def readyz(request: Request) -> Readiness | JSONResponse:
    pilot = getattr(request.app.state, "pilot", None)
    try:
        if pilot is None:
            raise RuntimeError("the service has not started")
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS), pilot.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the log says which
        logger.warning("readiness check failed: %s: %s", type(exc).__name__, exc)
        body = Readiness(status="unavailable", checks={"database": "unreachable"})
        return JSONResponse(body.model_dump(), status_code=503)
    return Readiness(status="ready", checks={"database": "ok"})
