"""The OpenAPI document: loads, lists every route, and every reference resolves."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.routing import APIRoute

from blockpilot.api import API_PREFIX, create_app, integrations
from blockpilot.api.routes import (
    blocks,
    credentials,
    executions,
    health,
    policy,
    reviews,
    sessions,
    sources,
    tools,
    workspace,
)

API_MODULES = (
    tools, blocks, sessions, credentials, workspace, executions, integrations, sources, policy,
    reviews,
)  # fmt: skip

EXPECTED = {
    ("GET", "/healthz"), ("GET", "/readyz"),
    ("GET", "/api/v1/tools"), ("POST", "/api/v1/tools/{name}"),
    ("GET", "/api/v1/blocks"), ("GET", "/api/v1/blocks/{block_id}"),
    ("GET", "/api/v1/sessions"), ("POST", "/api/v1/sessions"),
    ("GET", "/api/v1/credentials"), ("POST", "/api/v1/credentials"),
    ("DELETE", "/api/v1/credentials/{credential_id}"),
    ("PATCH", "/api/v1/credentials/{credential_id}"),
    ("POST", "/api/v1/credentials/{credential_id}/test"),
    ("GET", "/api/v1/workspace/files"), ("GET", "/api/v1/workspace/files/{path}"),
    ("PUT", "/api/v1/workspace/files/{path}"), ("DELETE", "/api/v1/workspace/files/{path}"),
    ("GET", "/api/v1/executions"), ("GET", "/api/v1/executions/{execution_id}"),
    ("GET", "/api/v1/integrations/{provider}/login"),
    ("GET", "/api/v1/integrations/{provider}/callback"),
    ("GET", "/api/v1/oauth/flows/{flow_id}"), ("POST", "/api/v1/oauth/verify"),
    ("GET", "/api/v1/sources"), ("POST", "/api/v1/sources"),
    ("GET", "/api/v1/sources/{name}"), ("DELETE", "/api/v1/sources/{name}"),
    ("POST", "/api/v1/sources/{name}/refresh"),
    ("GET", "/api/v1/policy"), ("POST", "/api/v1/policy/rules"),
    ("DELETE", "/api/v1/policy/rules/{rule_id}"),
    ("GET", "/api/v1/reviews"), ("GET", "/api/v1/reviews/{review_id}"),
    ("POST", "/api/v1/reviews/{review_id}/approve"), ("POST", "/api/v1/reviews/{review_id}/reject"),
}  # fmt: skip
# The OAuth callback is opened by the person's browser: no API key, and it answers in HTML.
BROWSER_ROUTES = {"/api/v1/integrations/{provider}/callback"}


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


async def _never_opened() -> Any:
    raise AssertionError("the app's lifespan is not run here")


async def test_document_lists_every_route(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "blockpilot"
    assert operations(document) == EXPECTED
    # The tool-call route sits on the app's own router (see tools.add_tool_call_route).
    app_router = create_app(pilot_factory=_never_opened).router
    routers = [("", health.router), ("", app_router)] + [
        (API_PREFIX, m.router) for m in API_MODULES
    ]
    routes = {
        (method, prefix + route.path.replace("{path:workspace_path}", "{path}"))
        for prefix, router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert routes == EXPECTED


async def test_every_reference_resolves_and_errors_have_one_shape(anon: httpx.AsyncClient) -> None:
    document = (await anon.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    for ref in refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    assert "HTTPValidationError" not in schemas  # FastAPI's default 422 shape is not what we send
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")) and path.startswith("/api/"):
                    if path in BROWSER_ROUTES and "text/html" in answer["content"]:
                        continue
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (
                        method,
                        path,
                        status,
                    )


async def test_api_routes_declare_the_bearer_scheme(anon: httpx.AsyncClient) -> None:
    document = (await anon.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for operation in item.values():
            expected = path.startswith("/api/") and path not in BROWSER_ROUTES
            assert ("security" in operation) == expected, path


async def test_bodies_are_documented(anon: httpx.AsyncClient) -> None:
    paths = (await anon.get("/openapi.json")).json()["paths"]
    credential = paths["/api/v1/credentials"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert {r["$ref"].rsplit("/", 1)[1] for r in credential["oneOf"]} == {
        "APIKeyCredentials",
        "OAuth2Credentials",
        "UserPasswordCredentials",
        "HostScopedCredentials",
    }
    tool = paths["/api/v1/tools/{name}"]["post"]
    assert tool["requestBody"]["content"]["application/json"]["schema"]["type"] == "object"
    assert "anyOf" in tool["responses"]["200"]["content"]["application/json"]["schema"]
