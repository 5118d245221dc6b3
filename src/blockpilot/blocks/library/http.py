"""HTTP request blocks; every request goes through the guarded client."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import CredentialsMetaInput, HostScopedCredentials
from blockpilot.executions.context import ExecutionContext
from blockpilot.net.client import GuardedResponse

HttpMethod = Literal["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 field name
_VALUE = re.compile(r"^[\t\x20-\x7e]*$")  # visible ASCII, space and tab: no CR, LF or NUL
# The URL decides where a request goes and the client decides how it is framed: a caller's
# Host header would pick another site on a shared server (with the stored credential).
_FORBIDDEN_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "te", "upgrade"}
)


def _header_problem(headers: dict[str, str]) -> str | None:
    for name, value in headers.items():
        if not _TOKEN.match(name):
            return f"header name {name[:60]!r} is not valid; use letters, digits and '-'"
        if name.lower() in _FORBIDDEN_HEADERS:
            return f"header {name!r} cannot be set; the URL and the client decide it"
        if not _VALUE.match(value):
            return f"header {name!r} has a value with line breaks or non-ASCII characters"
    return None


class _RequestInput(BlockSchemaInput):
    url: str = SchemaField(
        description="The URL to send the request to (http or https)", max_length=8192
    )
    method: HttpMethod = SchemaField(default="POST", description="The HTTP method")
    headers: dict[str, str] = SchemaField(default_factory=dict, description="Request headers")
    json_format: bool = SchemaField(
        default=True, description="Send the body as JSON and parse the response as JSON"
    )
    body: Any = SchemaField(default=None, description="The request body")


class _RequestOutput(BlockSchemaOutput):
    response: Any = SchemaField(description="The response body, for 2xx/3xx statuses")
    client_error: Any = SchemaField(description="The response body, for 4xx statuses")
    server_error: Any = SchemaField(description="The response body, for 5xx statuses")


async def _send(
    input_data: _RequestInput,
    context: ExecutionContext,
    sensitive_headers: dict[str, str] | None = None,
) -> BlockOutput:
    problem = _header_problem(input_data.headers)
    if problem is not None:
        yield "error", problem
        return
    body = input_data.body
    content: str | None = None
    json_body: Any = None
    if body is not None and input_data.method not in ("GET", "HEAD"):
        if input_data.json_format:
            json_body = body
        else:
            content = body if isinstance(body, str) else json.dumps(body)
    response: GuardedResponse = await context.http.request(
        input_data.method,
        input_data.url,
        headers=input_data.headers,
        content=content,
        json=json_body,
        sensitive_headers=sensitive_headers,
    )
    result: Any = response.text
    if input_data.json_format and response.content:
        try:
            result = response.json()
        except ValueError:
            result = response.text
    if response.status_code >= 500:
        yield "server_error", result
    elif response.status_code >= 400:
        yield "client_error", result
    else:
        yield "response", result


class SendWebRequestBlock(Block):
    id = "6595ae1f-b924-42cb-9a41-551a0611c4b4"
    effect = BlockEffect.WRITE
    trusted_scopes = frozenset()  # any URL: no operator base URL is exempt for it
    description = "Sends an HTTP request (GET, POST, ...) to a public URL and returns the response."
    categories = frozenset({BlockCategory.OUTPUT, BlockCategory.DEVELOPER_TOOLS})

    class Input(_RequestInput):
        pass

    class Output(_RequestOutput):
        pass

    async def run(
        self, input_data: Input, *, execution_context: ExecutionContext, **kwargs: Any
    ) -> BlockOutput:
        async for entry in _send(input_data, execution_context):
            yield entry


class SendAuthenticatedWebRequestBlock(Block):
    id = "fff86bcd-e001-4bad-a7f6-2eae4720c8dc"
    effect = BlockEffect.WRITE
    trusted_scopes = frozenset()  # any URL: no operator base URL is exempt for it
    description = (
        "Sends an HTTP request with the user's stored headers for that host (e.g. an API token), "
        "which are sent to that host only."
    )
    categories = frozenset({BlockCategory.OUTPUT, BlockCategory.DEVELOPER_TOOLS})

    class Input(_RequestInput):
        credentials: CredentialsMetaInput = CredentialsField(
            providers=["http"],
            supported_types=["host_scoped"],
            discriminator="url",
            description="Host-scoped headers to send with the request",
        )

    class Output(_RequestOutput):
        pass

    async def run(
        self,
        input_data: Input,
        *,
        credentials: HostScopedCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        if not credentials.matches_url(input_data.url):
            yield (
                "error",
                f"The selected credentials are for {credentials.host}, not for this URL's host",
            )
            return
        async for entry in _send(input_data, execution_context, credentials.header_values()):
            yield entry
