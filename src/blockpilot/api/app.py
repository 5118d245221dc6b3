"""The FastAPI application: lifespan, routers, error table and middleware, put together.

Every route of the API lives under :data:`API_PREFIX` and needs ``Authorization: Bearer <api
key>``; ``/healthz`` and ``/readyz`` (probes) and ``/openapi.json`` do not. Handlers only
translate HTTP to :class:`~blockpilot.pilot.Pilot` calls and back; errors are answered by the
one table in :mod:`blockpilot.api.errors`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp, Scope

from blockpilot import __version__
from blockpilot.api import integrations
from blockpilot.api.deps import current_user
from blockpilot.api.dispatch import dispatch_tool_calls
from blockpilot.api.errors import install_error_handlers
from blockpilot.api.limits import RateLimiter, app_limiter, rate_limit, spend_request
from blockpilot.api.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from blockpilot.api.routes import (
    API_PREFIX,
    blocks,
    credentials,
    error_responses,
    executions,
    health,
    policy,
    reviews,
    sessions,
    sources,
    tools,
    workspace,
)
from blockpilot.mcp import MCPHttpApp, api_key_authenticator
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.web import connect as connect_pages
from blockpilot.web import reviews as review_pages
from blockpilot.web import setup as setup_page

JSON_BODY_LIMIT = 2 * 1024 * 1024
"""Largest request body of every route except workspace uploads (which use ``max_file_bytes``)."""

PilotFactory = Callable[[], Awaitable[Pilot]]


async def _open_serving_pages() -> Pilot:
    """The app's own Pilot: its answers link to this app's pages, at BLOCKPILOT_PUBLIC_URL or
    the default address (docs/oauth.md#where-links-point)."""
    settings = Settings.load()
    return await Pilot.open(
        settings.model_copy(update={"public_url": settings.effective_public_url})
    )


def create_app(
    pilot: Pilot | None = None,
    *,
    pilot_factory: PilotFactory | None = None,
    limiter: RateLimiter | None = None,
) -> FastAPI:
    """Build the HTTP API.

    Args:
        pilot: A Pilot that the caller opened and will close (tests, embedding). The app
            uses it as is: its answers carry setup and approval links when its settings
            name ``public_url``.
        pilot_factory: Opens the Pilot when the app starts; the app closes it when it
            stops. Defaults to :meth:`Pilot.open` with settings from the environment and
            ``public_url`` defaulted, so answers link to this app's pages.
        limiter: Per-user rate limit and tool-call concurrency cap. Defaults to an
            :class:`~blockpilot.limits.InProcessRateLimiter` with the Pilot's settings.

    Returns:
        The application, ready for any ASGI server.

    Example::

        app = create_app()  # uvicorn.run(app) opens the Pilot at start-up
    """
    if pilot is not None and pilot_factory is not None:
        raise ValueError("give either pilot or pilot_factory, not both")
    factory = pilot_factory or _open_serving_pages

    # MCP over streamable HTTP at /mcp, as the user of the request's bearer API key.
    # The same per-user rate limit and tool-call cap as the HTTP API, from the same limiter.
    mcp_http = MCPHttpApp(
        lambda: app.state.pilot,
        api_key_authenticator(lambda: app.state.pilot),
        rate_limit=lambda user_id: spend_request(app_limiter(app), user_id),
        tool_call_slot=lambda user_id: app_limiter(app).concurrency(user_id),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if pilot is not None:
            app.state.pilot = pilot
            integrations.attach(app, pilot)
            async with mcp_http.lifespan():
                yield
            return
        opened = await factory()
        app.state.pilot = opened
        try:
            integrations.attach(app, opened)
            async with mcp_http.lifespan():
                yield
        finally:
            await opened.close()

    app = _API(
        title="blockpilot",
        version=__version__,
        summary="Find and run typed integration blocks for an AI copilot, "
        "with each user's own credentials.",
        lifespan=lifespan,
        # Starlette's slash redirect builds its Location from the Host header (an open
        # redirect via a forged Host); a path with a stray trailing slash is a plain 404.
        redirect_slashes=False,
        middleware=[
            Middleware(RequestContextMiddleware),
            Middleware(
                BodySizeLimitMiddleware,
                limit_for=_body_limits(lambda: getattr(app.state, "pilot", None)),
            ),
        ],
    )
    if pilot is not None:
        app.state.pilot = pilot  # usable without running the lifespan (in-process test clients)
        integrations.attach(app, pilot)
    app.state.limiter = limiter  # None: built from the Pilot's settings on first use
    install_error_handlers(app)
    api_dependencies = [Depends(current_user), Depends(rate_limit)]
    api_responses = error_responses(401, 422, 429, 500)
    tools.add_tool_call_route(
        app.router, prefix=API_PREFIX, dependencies=api_dependencies, responses=api_responses
    )
    app.include_router(health.router)
    api = APIRouter(prefix=API_PREFIX, dependencies=api_dependencies, responses=api_responses)
    for module in (tools, blocks, sessions, credentials, workspace, executions, policy, reviews):
        api.include_router(module.router)
    api.include_router(sources.router)  # admin keys only (docs/sources.md)
    app.include_router(api)
    # OAuth connect (its callback has no API key) and the setup page (HTML, not in OpenAPI).
    app.include_router(integrations.router, prefix=API_PREFIX)
    app.include_router(setup_page.router)
    app.include_router(connect_pages.router)
    app.include_router(review_pages.router)
    # A Route, not a Mount: POST /mcp must not be redirected to /mcp/. First, because routes
    # are matched in order and matching every API route first cost ~40 µs per MCP request.
    app.router.routes.insert(0, Route("/mcp", endpoint=mcp_http, methods=["GET", "POST", "DELETE"]))
    _add_components(app, credentials.CREDENTIAL_COMPONENTS)
    return app


class _API(FastAPI):
    """FastAPI, with tool calls dispatched past its outer middleware (:mod:`.dispatch`)."""

    def build_middleware_stack(self) -> ASGIApp:
        return dispatch_tool_calls(self, super().build_middleware_stack())


def _body_limits(current_pilot: Callable[[], Pilot | None]) -> Callable[[Scope], int]:
    upload_prefix = f"{API_PREFIX}/workspace/files/"

    def limit_for(scope: Scope) -> int:
        if scope.get("method") == "PUT" and str(scope.get("path", "")).startswith(upload_prefix):
            pilot = current_pilot()
            if pilot is not None:
                return pilot.settings.max_file_bytes
        return JSON_BODY_LIMIT

    return limit_for


def _add_components(app: FastAPI, schemas: dict[str, Any]) -> None:
    """Publish schemas that hand-declared request bodies refer to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        document.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
