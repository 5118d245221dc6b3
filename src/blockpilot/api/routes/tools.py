"""The copilot's tools over HTTP, with exactly the in-process semantics of ``Pilot.call_tool``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from blockpilot.api.body import json_body, parse_json_object
from blockpilot.api.deps import CurrentUser, PilotDep, request_api_key_id, sign_in
from blockpilot.api.limits import LimiterDep, RateLimiter, app_limiter, spend_request
from blockpilot.api.routes import error_responses
from blockpilot.api.schemas import ToolList
from blockpilot.errors import InvalidInputError
from blockpilot.pilot import Pilot
from blockpilot.storage.users import User
from blockpilot.tools.responses import AnyToolResponse
from blockpilot.tools.schemas import ToolFormat

SESSION_HEADER = "X-Session-Id"
_SESSION_HEADER_KEY = SESSION_HEADER.lower().encode("latin-1")
IDEMPOTENCY_HEADER = "Idempotency-Key"
_MAX_SESSION_ID_CHARS = 128

router = APIRouter(tags=["tools"])

_TOOL_ARGUMENTS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": True,
    "description": "The tool's arguments, as the model gives them (see GET /api/v1/tools for "
    "each tool's parameters). An empty body means {}.",
    "examples": [{"query": "send an email"}],
}


@router.get("/tools", summary="Tool definitions for an LLM API or MCP")
async def list_tools(
    pilot: PilotDep,
    fmt: Annotated[
        ToolFormat, Query(alias="format", description="openai, anthropic or mcp")
    ] = "openai",
) -> ToolList:
    return ToolList(format=fmt, tools=pilot.export_tools(fmt))


class ToolCallRoute(APIRoute):
    """Runs a tool call without FastAPI's per-request machinery.

    The tool call is the hot path of the API, and resolving its declared dependencies
    (key check, rate limit, Pilot, limiter, header) through FastAPI cost more than the run
    itself (~150 µs a request, measured with ``python -m bench``). The endpoint's signature
    (:func:`call_tool`) still declares all of them for OpenAPI; this route resolves the same
    values directly, in the same order, with the same functions and errors as the declared
    dependencies, reading the request's headers in one pass over the scope.

    It also answers without FastAPI's request wrapper (two ``AsyncExitStack`` s for
    dependencies with ``yield``, which this route has none of, and a second exception
    handler layer): an error propagates to the app's exception middleware, which answers it
    with the same handlers (docs/performance.md#round-five-issue-17-the-http-layer). Nor
    does it build a ``Request`` or a ``Response`` object: it reads the scope and sends the
    response's two messages itself (:func:`send_tool_response`).
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods is not None and scope["method"] not in self.methods:
            await super().handle(scope, receive, send)  # 405, as for any route
            return
        body, session_id = await self._call(scope, receive)
        await send_tool_response(send, body, session_id)

    async def _call(self, scope: Scope, receive: Receive) -> tuple[bytes, str]:
        headers = _request_headers(scope)
        app = scope["app"]
        pilot: Pilot = app.state.pilot
        state = scope.setdefault("state", {})
        user = await sign_in(pilot, headers.get(b"authorization"), state)
        limiter = app_limiter(app)
        await spend_request(limiter, user.id)
        session_id = headers.get(b"x-session-id")
        if session_id is not None and len(session_id) > _MAX_SESSION_ID_CHARS:
            raise RequestValidationError(
                [
                    {
                        "type": "string_too_long",
                        "loc": ("header", SESSION_HEADER),
                        "msg": f"String should have at most {_MAX_SESSION_ID_CHARS} characters",
                    }
                ]
            )
        return await _run_tool_call(
            pilot,
            limiter,
            user,
            scope["path_params"]["name"],
            session_id=session_id,
            idempotency_key=headers.get(b"idempotency-key"),
            api_key_id=state["api_key_id"],
            content_type=headers.get(b"content-type"),
            read_body=partial(_read_body, receive),
        )


_HEADERS_READ = frozenset({b"authorization", b"content-type", b"x-session-id", b"idempotency-key"})


def _request_headers(scope: Scope) -> dict[bytes, str]:
    """The headers the tool-call route reads, each one's first value (as ``Headers.get``)."""
    found: dict[bytes, str] = {}
    for key, value in scope["headers"]:
        if key in _HEADERS_READ and key not in found:
            found[key] = value.decode("latin-1")
    return found


async def _read_body(receive: Receive) -> bytes:
    """The whole request body, as ``Request.body`` reads it (without its stream generator)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


async def call_tool(
    name: str,
    request: Request,
    user: CurrentUser,
    pilot: PilotDep,
    limiter: LimiterDep,
    x_session_id: Annotated[
        str | None,
        Header(
            alias=SESSION_HEADER,
            max_length=_MAX_SESSION_ID_CHARS,
            description="Continue this chat session (yours only).",
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_HEADER,
            max_length=200,
            description="run_block only: repeat a call without acting twice (the first "
            "call's result comes back).",
        ),
    ] = None,
) -> Response:
    """The documented endpoint (:class:`ToolCallRoute` runs the same steps without FastAPI)."""
    body, session_id = await _run_tool_call(
        pilot,
        limiter,
        user,
        name,
        session_id=x_session_id,
        idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
        api_key_id=request_api_key_id(request),
        content_type=request.headers.get("content-type"),
        read_body=request.body,
    )
    return Response(body, media_type="application/json", headers={SESSION_HEADER: session_id})


async def send_tool_response(send: Send, body: bytes, session_id: str) -> None:
    """Send what ``Response(body, media_type="application/json", headers={SESSION_HEADER:
    session_id})`` sends, without building the response object (the hot path's answer)."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (_SESSION_HEADER_KEY, session_id.encode("latin-1")),
                (b"content-length", str(len(body)).encode("latin-1")),
                (b"content-type", b"application/json"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _run_tool_call(
    pilot: Pilot,
    limiter: RateLimiter,
    user: User,
    name: str,
    *,
    session_id: str | None,
    idempotency_key: str | None,
    api_key_id: str | None,
    content_type: str | None,
    read_body: Callable[[], Awaitable[bytes]],
) -> tuple[bytes, str]:
    """The response body (JSON) and the session it answered in."""
    pilot.tool(name)  # an unknown tool is a 404 before the body is read or a session made
    arguments = parse_json_object(await read_body(), content_type, allow_empty=True)
    if idempotency_key is not None and name == "run_block":
        # The header is the HTTP spelling of run_block's idempotency_key (docs/approvals.md).
        given = arguments.get("idempotency_key")
        if given is not None and given != idempotency_key:
            raise InvalidInputError(
                f"The {IDEMPOTENCY_HEADER} header and the idempotency_key argument differ; "
                "send one of them"
            )
        arguments["idempotency_key"] = idempotency_key
    async with limiter.concurrency(user.id):
        # An unknown session (or user) is a typed 404 here, not a tool response.
        prepared = await pilot.prepare_call(
            name,
            user_id=user.id,
            session_id=session_id or None,  # an empty header: none
            api_key_id=api_key_id,
        )
        response = await pilot.run_call(prepared, arguments)
    answered_session = prepared.call.session_id
    assert answered_session is not None  # a signed-in call always has one
    return response.to_json().encode("utf-8"), answered_session


def add_tool_call_route(
    router: APIRouter,
    *,
    prefix: str,
    dependencies: Sequence[params.Depends],
    responses: dict[int | str, dict[str, Any]],
) -> None:
    """Add ``POST {prefix}/tools/{name}`` to *router*, with the API's *dependencies* and
    error *responses* declared (for OpenAPI; :class:`ToolCallRoute` resolves them itself).

    The app adds it to its own router, and it goes first there: a route inside included
    routers costs FastAPI's nested matching on every call (~30 µs, measured with ``python -m
    bench``), and each route matched before it (FastAPI's own ``/openapi.json`` and ``/docs``
    pages) ~1–2 µs. No other route's path overlaps it.
    """
    router.add_api_route(
        f"{prefix}/tools/{{name}}",
        call_tool,
        methods=["POST"],
        route_class_override=ToolCallRoute,
        tags=["tools"],
        dependencies=dependencies,
        summary="Run a tool as the model would",
        description=(
            "Every tool outcome is a 200 with the tool's JSON response, `type: error` included; "
            "the response carries `session_id`, also sent as the `X-Session-Id` header. Without "
            "an `X-Session-Id` request header a new chat session is created. Each user may have "
            "a limited number of tool calls in flight (429 with `Retry-After` beyond it). "
            "`run_block` takes an `Idempotency-Key` header: a repeated call with the same key and "
            "inputs returns the first call's result without running again."
        ),
        response_model=None,
        responses={
            **responses,
            200: {"model": AnyToolResponse, "description": "The tool's response (any outcome)"},
            **error_responses(400, 404, 413, 415, 422, 429),
        },
        openapi_extra=json_body(_TOOL_ARGUMENTS, required=False),
    )
    router.routes.insert(0, router.routes.pop())
