"""Tool calls dispatched in front of FastAPI's outer middleware stack.

``POST /api/v1/tools/{name}`` is the API's hot path. FastAPI wraps every request in layers
that do nothing for it: the server-error middleware (the request middleware answers every
unexpected error before it could), the telemetry middleware (without OpenTelemetry
configured), the application body limit (none is set: ``BodySizeLimitMiddleware`` is the
limit), the exit stack for uploaded files (this route takes none) and the router, which
tries routes in turn. :class:`ToolCallDispatch` sends a request that the router would give
the tool-call route straight to the same user middleware, the same exception middleware
with the same handlers, and the route: every response, header, error body, limit and log
line is the one the full stack makes (docs/performance.md#round-six-issue-17-the-http-layer).
Anything else, or an app configured beyond what :func:`blockpilot.api.app.create_app`
builds (another middleware, a handler for every exception, debug, an application body
limit), takes the full stack.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from blockpilot.api.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from blockpilot.api.routes.tools import ToolCallRoute

# The user middleware create_app installs, outermost first; both keep no state of their own.
_OWN_MIDDLEWARE = (RequestContextMiddleware, BodySizeLimitMiddleware)


class ToolCallDispatch:
    """The app's middleware stack, with tool calls taken past FastAPI's outer layers.

    Args:
        stack: The full middleware stack FastAPI built (every other request goes there).
        route: The tool-call route.
        router: The app's router (a matched request's ``scope["router"]``, as it sets it).
        fast: The user middleware and exception middleware around ``route.handle``.
    """

    def __init__(self, stack: ASGIApp, route: ToolCallRoute, router: Any, fast: ASGIApp) -> None:
        self.stack = stack
        self.route = route
        self.router = router
        self.fast = fast
        self._prefix = route.path.split("{", 1)[0]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].startswith(self._prefix)
            and not scope.get("root_path")
            and "fastapi.telemetry" not in scope
            and "fastapi" not in scope  # FastAPI's own routing state (none on a new request)
        ):
            route = self.route
            match = route.path_regex.match(scope["path"])
            if match is not None:
                # What the router's matching gives the scope (Route.matches, then FastAPI's
                # route key) before it hands the request to the route.
                params = match.groupdict()
                for key, value in params.items():
                    params[key] = route.param_convertors[key].convert(value)
                scope.setdefault("router", self.router)
                scope["endpoint"] = route.endpoint
                scope["path_params"] = {**scope.get("path_params", {}), **params}
                scope["route"] = route
                await self.fast(scope, receive, send)
                return
        await self.stack(scope, receive, send)


def dispatch_tool_calls(app: FastAPI, stack: ASGIApp) -> ASGIApp:
    """*stack* behind a :class:`ToolCallDispatch` when *app* is configured as ``create_app``
    builds it (see the module's docstring); else *stack* itself."""
    handlers = dict(app.exception_handlers)
    if (
        app.debug
        or getattr(app, "max_body_size", None) is not None
        or 500 in handlers
        or Exception in handlers
        or [m.cls for m in app.user_middleware] != list[Any](_OWN_MIDDLEWARE)
        or getattr(app.router, "form_limits", None)
    ):
        return stack
    route = _tool_call_route(app)
    if route is None:
        return stack
    fast: ASGIApp = ExceptionMiddleware(route.handle, handlers=handlers, debug=app.debug)
    for middleware in reversed(app.user_middleware):
        fast = middleware.cls(fast, *middleware.args, **middleware.kwargs)
    return ToolCallDispatch(stack, route, app.router, fast)


def _tool_call_route(app: FastAPI) -> ToolCallRoute | None:
    """The tool-call route, when every route the router tries before it is a fixed path
    outside the tool calls' prefix (so none of them can take a tool call)."""
    routes = app.router.routes
    found = next((r for r in routes if isinstance(r, ToolCallRoute)), None)
    if found is None:
        return None
    prefix = found.path.split("{", 1)[0]
    for route in routes[: routes.index(found)]:
        if not isinstance(route, Route) or "{" in route.path or route.path.startswith(prefix):
            return None
    return found
