"""The signed-in user's credentials: metadata out, secrets only in."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from blockpilot.api.body import json_body, read_json_object
from blockpilot.api.deps import CurrentUser, PilotDep
from blockpilot.api.routes import error_responses
from blockpilot.api.schemas import CredentialCheckResult, CredentialList
from blockpilot.credentials.checks import CredentialChecker
from blockpilot.credentials.models import CredentialsAdapter, CredentialsMeta
from blockpilot.errors import CredentialNotFoundError, InvalidInputError

router = APIRouter(tags=["credentials"])


def _input_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """The request body as the server reads it: ``type`` picks the model, ids are ours."""
    schema = CredentialsAdapter.json_schema(ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = schema.pop("$defs", {})
    for model in components.values():
        model["properties"].pop("id", None)  # the server assigns ids; a given one is ignored
        model["required"] = sorted({*model.get("required", ()), "type"})
    return schema, components


# The models are published as components by app.py.
CREDENTIAL_INPUT_SCHEMA, CREDENTIAL_COMPONENTS = _input_schema()


@router.get("/credentials", summary="Your credentials (metadata only)")
async def list_credentials(user: CurrentUser, pilot: PilotDep) -> CredentialList:
    return CredentialList(credentials=await pilot.credential_store.list_meta(user.id))


@router.post(
    "/credentials",
    status_code=201,
    summary="Store a credential (encrypted); returns its metadata",
    responses=error_responses(400, 409, 413, 415, 422),
    openapi_extra=json_body(
        CREDENTIAL_INPUT_SCHEMA,
        description='One credential, e.g. {"provider": "openai", "type": "api_key", '
        '"api_key": "...", "title": "..."}',
    ),
)
async def add_credentials(
    request: Request,
    response: Response,
    user: CurrentUser,
    pilot: PilotDep,
    default: Annotated[bool, Query(description="Make it the default for its provider")] = False,
) -> CredentialsMeta:
    data = await read_json_object(request)
    meta = await pilot.add_credentials(user.id, data, is_default=default)
    response.headers["Location"] = f"{request.url.path}/{meta.id}"
    return meta


@router.patch(
    "/credentials/{credential_id}",
    summary="Bind one of your SMTP credentials to its server",
    description='Body `{"host": "smtp.example.com:587"}`: the server (host, optional '
    "port) the credential is sent to, and only to. Needed once for SMTP credentials stored "
    "before the binding (`needs_host` in the listing). Returns the metadata.",
    responses=error_responses(400, 404, 413, 415, 422),
    openapi_extra=json_body(
        {
            "type": "object",
            "properties": {"host": {"type": "string", "maxLength": 300}},
            "required": ["host"],
            "additionalProperties": False,
        },
        description='{"host": "smtp.example.com:587"}',
    ),
)
async def update_credentials(
    credential_id: str, request: Request, user: CurrentUser, pilot: PilotDep
) -> CredentialsMeta:
    data = await read_json_object(request)
    host = data.get("host")
    if set(data) != {"host"} or not isinstance(host, str):
        raise InvalidInputError('The body must be {"host": "smtp.example.com[:port]"}')
    return await pilot.set_credential_host(user.id, credential_id, host)


@router.delete(
    "/credentials/{credential_id}",
    status_code=204,
    summary="Delete one of your credentials",
    responses=error_responses(404),
)
async def delete_credentials(credential_id: str, user: CurrentUser, pilot: PilotDep) -> Response:
    if not await pilot.credential_store.delete(user.id, credential_id):
        raise CredentialNotFoundError(f"Credential {credential_id[:80]!r} not found")
    return Response(status_code=204)


@router.post(
    "/credentials/{credential_id}/test",
    summary="Check one of your credentials with the provider",
    description="One cheap read-only request to the provider where it has one: GitHub "
    "(`GET /user`), OpenAI-compatible APIs (`GET /models`), Anthropic (`GET /v1/models`). "
    "`ok` is null for providers without a check. A refused credential is a 200 with "
    "`ok: false`; the provider's status is in `status`.",
    responses=error_responses(404),
)
async def check_credential(
    credential_id: str, user: CurrentUser, pilot: PilotDep
) -> CredentialCheckResult:
    checker = CredentialChecker(pilot.credentials, pilot.http, pilot.provider_urls)
    result = await checker.check(user.id, credential_id)
    return CredentialCheckResult(
        id=credential_id, ok=result.ok, status=result.status, message=result.message
    )
