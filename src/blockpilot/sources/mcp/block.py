"""The runtime block of one MCP tool: validate, call it in the user's upstream session, shape.

Built on the OpenAPI operation block (lazy schema models, jsonschema validation, the
credentials input); only the call and the outputs differ (docs/sources.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
import re
from collections.abc import Mapping
from typing import Any

from mcp_types import CallToolResult, TextContent
from pydantic import Field, create_model

from blockpilot.blocks.base import BlockOutput
from blockpilot.credentials.models import Credentials, OAuth2Credentials
from blockpilot.errors import (
    BlockExecutionError,
    InsufficientScopeError,
    ReauthorizationRequiredError,
    UpstreamInsufficientScopeError,
    UpstreamUnauthorizedError,
)
from blockpilot.executions.context import ExecutionContext
from blockpilot.sources._http import source_client
from blockpilot.sources.mcp._sessions import session_pool
from blockpilot.sources.mcp._transports import Endpoint
from blockpilot.sources.openapi.block import OpenAPIOperationBlock, OpenAPIOutput

MAX_ERROR_CHARS = 2_000
# The credential a user stores for a source, by its --auth mode.
CREDENTIAL_TYPE_OF = {"bearer": "api_key", "oauth": "oauth2"}
RUN_FIELD = "run"
_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def tool_operation(tool: Mapping[str, Any], auth: str) -> dict[str, Any]:
    """The stored form of *tool*: its input schema, description and output schema."""
    schema = {k: v for k, v in dict(tool["inputSchema"]).items() if k != "$schema"}
    schema["type"] = "object"
    schema.setdefault("properties", {})
    no_inputs = not schema["properties"]
    if no_inputs:
        # run_block answers a call without inputs with the schema, so a tool that takes none
        # gets one input that says "run it" (and is not sent to the server).
        schema["properties"] = {
            RUN_FIELD: {"type": "boolean", "description": "true: run this tool (it has no inputs)"}
        }
        schema["required"] = [RUN_FIELD]
    title = (tool.get("annotations") or {}).get("title") or tool.get("title")
    description = str(tool.get("description") or title or tool["name"])[:4000]
    return {
        "key": tool["name"],
        "description": description,
        "input": schema,
        "output": tool.get("outputSchema"),
        "no_inputs": no_inputs,
        "auth": {"types": [CREDENTIAL_TYPE_OF[auth]], "scopes": []} if auth != "none" else None,
    }


def tool_output_schema(op: Mapping[str, Any]) -> dict[str, Any]:
    structured = dict(op.get("output") or {"type": "object"})
    structured.pop("$schema", None)
    structured["description"] = "The tool's structured result"
    return {
        "type": "object",
        "properties": {
            "result": structured,
            "text": {"type": "string", "description": "A text item of the tool's result"},
            "file": {
                "type": "string",
                "description": "An image or other binary item, saved as workspace://<file id>",
            },
            "error": {"type": "string", "description": "Error message if the block failed"},
        },
    }


class MCPToolBlock(OpenAPIOperationBlock):
    """One tool of a remote MCP server, called with the signed-in user's own token."""

    def __init__(self, *, endpoint: Endpoint, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint

    @staticmethod
    def decode(text: str) -> Any:
        return json.loads(text)  # a tool's stored form is plain JSON text

    @property
    def Output(self) -> type[OpenAPIOutput]:  # type: ignore[override]  # noqa: N802
        if self._output is None:
            model = create_model(
                f"{self._name}_Output",
                __base__=OpenAPIOutput,
                result=(Any, Field(default=None, description="Structured result")),
                text=(str | None, Field(default=None, description="Text item")),
                file=(str | None, Field(default=None, description="workspace:// reference")),
            )
            model.operation_schema = tool_output_schema(self.operation)
            self._output = model
        return self._output

    async def run(self, input_data: Any, **kwargs: Any) -> BlockOutput:
        context: ExecutionContext = kwargs["execution_context"]
        credentials: Credentials | None = kwargs.get("credentials")
        arguments = {} if self.operation.get("no_inputs") else self.given_arguments(input_data)
        token = None
        if self.operation.get("auth"):
            secret = getattr(credentials, "api_key", None) or getattr(
                credentials, "access_token", None
            )
            if secret is None:
                raise BlockExecutionError(f"{self.name}: a token credential is needed")
            token = secret.get_secret_value()
        try:
            result = await self._call(context, token, arguments)
        except UpstreamUnauthorizedError:
            if not isinstance(credentials, OAuth2Credentials):
                raise self._reconnect("add a new API key") from None
            # An OAuth token refused before its expiry: refresh once (across processes), retry.
            fresh = await context.refresh_rejected(credentials)
            if fresh is None:
                raise self._reconnect("connect the account again") from None
            try:
                result = await self._call(context, fresh.access_token.get_secret_value(), arguments)
            except UpstreamUnauthorizedError:
                raise self._reconnect("connect the account again") from None
        texts = [item.text for item in result.content if isinstance(item, TextContent)]
        if result.is_error:
            message = " ".join(texts)[:MAX_ERROR_CHARS] or "the tool reported an error"
            raise BlockExecutionError(
                f"{self.name}: {message}", block_name=self.name, block_id=self.id
            )
        if result.structured_content is not None:
            yield "result", result.structured_content
            # Servers repeat the structured result as JSON text for older clients: once is enough.
            texts = [t for t in texts if not _same_json(t, result.structured_content)]
        for text in texts:
            yield "text", text
        for n, item in enumerate(result.content):
            saved = await _save_binary(context, self.name, n, item)
            if saved is not None:
                yield "file", saved

    async def _call(
        self, context: ExecutionContext, token: str | None, arguments: dict[str, Any]
    ) -> CallToolResult:
        try:
            return await session_pool().call_tool(
                user_id=context.user_id,
                chat_session=context.session_id or "",
                source=self.source,
                endpoint=self.endpoint,
                token=token,
                tool=self.operation["key"],
                arguments=arguments,
                # The source's own origin is exempt from the private-address guard for its
                # blocks only (sources/http.py); a stdio server has none.
                http=source_client(context.http, self.base_url, trusted=self.trusted)
                if self.base_url
                else context.http,
            )
        except UpstreamInsufficientScopeError as exc:
            wanted = " ".join(exc.scopes) or "a scope it did not name"
            raise InsufficientScopeError(
                f"The MCP server {self.source!r} refused {self.operation['key']!r}: the connected "
                f"account lacks the scope {wanted!r} (HTTP 403 insufficient_scope); connect the "
                "account again granting it",
                details={"provider": self.source, "scopes": exc.scopes},
            ) from None

    def _reconnect(self, what: str) -> ReauthorizationRequiredError:
        return ReauthorizationRequiredError(
            f"The MCP server {self.source!r} refused the stored token (HTTP 401); "
            f"reconnect: {what} for provider {self.source!r}",
            details={"provider": self.source, "reconnect": True},
        )


def _same_json(text: str, value: Any) -> bool:
    try:
        return bool(json.loads(text) == value)
    except ValueError:
        return False


async def _save_binary(context: ExecutionContext, block: str, n: int, item: Any) -> str | None:
    """Save an image, audio or embedded blob item to the workspace; its workspace:// URI."""
    kind = getattr(item, "type", "")
    data: str | None = None
    mime = "application/octet-stream"
    if kind in ("image", "audio"):
        data, mime = item.data, item.mime_type or mime
    elif kind == "resource" and hasattr(item.resource, "blob"):
        data, mime = item.resource.blob, item.resource.mime_type or mime
    if data is None:
        return None
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BlockExecutionError(
            f"{block}: the server sent a {kind} item that is not base64"
        ) from None
    ext = mimetypes.guess_extension(mime) or ".bin"
    path = f"/mcp/{_FILE_CHARS.sub('_', block)}/{context.node_exec_id}-{n}{ext}"
    record = await context.files.write(path, raw, mime_type=mime)
    return record.uri
