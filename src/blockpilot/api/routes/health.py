"""Liveness and readiness probes (no authentication)."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

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
    summary="The service can read and write its database",
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
        return _unavailable("unreachable")
    try:
        # A database that answers reads but cannot take a write (a full disk, a read-only
        # file) fails every run and credential change: not ready (docs/storage.md). The
        # write is the lease this process renews anyway.
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            await pilot.leases.renew()
    except Exception as exc:  # noqa: BLE001
        logger.warning("readiness write failed: %s: %s", type(exc).__name__, exc)
        return _unavailable("not_writable")
    return Readiness(status="ready", checks={"database": "ok"})


def _unavailable(database: Literal["unreachable", "not_writable"]) -> JSONResponse:
    body = Readiness(status="unavailable", checks={"database": database})
    return JSONResponse(body.model_dump(), status_code=503)
