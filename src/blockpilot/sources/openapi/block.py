"""The runtime block of one OpenAPI operation: validate, build the request, call, shape.

Blocks are built from the stored operation (see :mod:`.operations`) without pydantic
models; the ``Input``/``Output`` models are made the first time a block's schema is needed,
so a catalogue of 10,000 operations loads quickly (docs/sources.md).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, ClassVar, cast
from urllib.parse import quote, urlencode

from jsonschema import Draft202012Validator
from pydantic import Field, create_model

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, _inline_refs
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import Credentials, CredentialsMetaInput
from blockpilot.errors import BlockExecutionError, BlockInputError, NetworkError
from blockpilot.executions.context import ExecutionContext
from blockpilot.sources._http import source_client

MAX_ERROR_BODY_CHARS = 2_000
_USEFUL_HEADERS = ("content-type", "location", "link", "etag", "last-modified", "retry-after")


class OpenAPIInput(BlockSchemaInput):
    """Base of generated inputs: the schema shown is the operation's own (docs/sources.md)."""

    operation_schema: ClassVar[dict[str, Any]] = {}

    @classmethod
    def jsonschema(cls) -> dict[str, Any]:
        return cls.operation_schema


class OpenAPIOutput(BlockSchemaOutput):
    """Base of generated outputs (the body schema is the operation's 2xx schema)."""

    operation_schema: ClassVar[dict[str, Any]] = {}

    @classmethod
    def jsonschema(cls) -> dict[str, Any]:
        return cls.operation_schema


@cache
def credentials_property(
    provider: str, types: tuple[str, ...], scopes: tuple[str, ...]
) -> tuple[dict[str, Any], Any]:
    """The JSON schema of a source's credentials input, and its pydantic field (cached)."""

    def field() -> Any:
        return CredentialsField(
            providers=[provider],
            supported_types=types,
            required_scopes=scopes,
            description=f"Credentials for the {provider} API",
        )

    model = create_model(
        "CredentialsOnly", __base__=BlockSchemaInput, credentials=(CredentialsMetaInput, field())
    )
    return _inline_refs(model.model_json_schema())["properties"]["credentials"], field


def operation_input_schema(provider: str, op: Mapping[str, Any]) -> dict[str, Any]:
    """The input schema the model sees: the operation's inputs plus its credentials input."""
    schema = dict(op["input"])
    auth = op.get("auth")
    if auth:
        prop, _ = credentials_property(provider, tuple(auth["types"]), tuple(auth["scopes"]))
        schema["properties"] = {**schema["properties"], "credentials": prop}
        schema["required"] = [*schema.get("required", []), "credentials"]
    return schema


def operation_output_schema(op: Mapping[str, Any]) -> dict[str, Any]:
    body = dict(op.get("output_body") or {})
    body["description"] = "The response body (parsed JSON, else text)" + (
        f": {body['description']}" if body.get("description") else ""
    )
    return {
        "type": "object",
        "properties": {
            "status": {"type": "integer", "description": "HTTP status of the response"},
            "body": body,
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": (
                    "Response headers of use (content type, location, paging links, rate limits)"
                ),
            },
            "error": {"type": "string", "description": "Error message if the block failed"},
        },
    }


def _safe_error(err: Any) -> str:
    # jsonschema's messages quote the offending value; ours never echo input values.
    kind, expected = err.validator, err.validator_value
    if kind == "type":
        return f"should be of type {expected}"
    if kind == "enum":
        return f"should be one of {json.dumps(expected)[:300]}"
    if kind == "required":
        missing = [name for name in expected if name not in (err.instance or {})]
        return f"missing required field(s): {', '.join(map(str, missing))}"
    if kind == "additionalProperties":
        return "has fields the schema does not allow"
    return f"does not satisfy {kind} {json.dumps(expected)[:200]}"


_EFFECTS = {effect.value: effect for effect in BlockEffect}

# JSON text kept inside a stored JSON document needs an escape for every quote, and decoding
# those escapes was most of a start-up's JSON work; stored with ' and " swapped it needs
# next to none (docs/sources.md#stored-form).
_SWAP_QUOTES = str.maketrans({'"': "'", "'": '"'})


def stored_json(value: Any) -> str:
    """*value* as compact JSON text with ' and " swapped, to be kept in a stored config."""
    return json.dumps(value, separators=(",", ":")).translate(_SWAP_QUOTES)


def swap_quotes(text: str) -> str:
    """Plain JSON text from :func:`stored_json`'s form, and the other way round."""
    return text.translate(_SWAP_QUOTES)


# Search fields as one text per operation ("name\x1fdescription\x1e..."): building the search
# index then splits strings instead of decoding 100,000 JSON texts.
_FIELD_SEPARATOR, _PAIR_SEPARATOR = "\x1f", "\x1e"
_NO_SEPARATORS = str.maketrans({_FIELD_SEPARATOR: " ", _PAIR_SEPARATOR: " "})


def stored_fields(pairs: Sequence[Sequence[str]]) -> str:
    """``[field name, description]`` pairs as one stored text (separators in them: spaces)."""
    return _PAIR_SEPARATOR.join(
        f"{name.translate(_NO_SEPARATORS)}{_FIELD_SEPARATOR}{text.translate(_NO_SEPARATORS)}"
        for name, text in pairs
    )


def field_pairs(stored: str) -> list[list[str]]:
    """The ``[field name, description]`` pairs of :func:`stored_fields`' text."""
    if not stored:
        return []
    return [pair.split(_FIELD_SEPARATOR, 1) for pair in stored.split(_PAIR_SEPARATOR)]


class OpenAPIOperationBlock(Block):
    """One operation of an imported OpenAPI source."""

    categories: ClassVar[frozenset[BlockCategory]] = frozenset({BlockCategory.DEVELOPER_TOOLS})
    # No provider base URL is exempt for these blocks; their own base URL is, per run
    # (sources/http.py).
    trusted_scopes: ClassVar[frozenset[str] | None] = frozenset()

    # Made on first use; class defaults, so 100,000 blocks do not each carry three Nones.
    _input: type[OpenAPIInput] | None = None
    _output: type[OpenAPIOutput] | None = None
    _validator: Draft202012Validator | None = None

    def __init__(
        self, *, source: str, block_id: str, name: str, base_url: str, trusted: bool,
        key: str, description: str, effect: str,
        summary: str | Mapping[str, Any], detail: str | Mapping[str, Any],
        fields: str | Sequence[Sequence[str]] | None = None,
    ) -> None:  # fmt: skip
        self.id = block_id  # type: ignore[misc]
        self.source = source
        self._name = name
        self.base_url = base_url.rstrip("/")
        self.trusted = trusted
        self.key = key
        self.description = description  # type: ignore[misc]
        # a dict lookup: Enum's call is slow x 100,000 blocks
        self.effect = _EFFECTS.get(effect) or BlockEffect(effect)  # type: ignore[misc]
        # The operation's summary (method, path, tags, credentials, search fields) and its
        # full form (schemas, parameters) stay JSON text until first needed: a catalogue of
        # 100,000 operations then starts without decoding them (docs/sources.md).
        self._summary = summary
        self._detail = detail
        # Search fields: stored text (stored_fields), pairs, or None: the summary's.
        self._fields = fields

    @staticmethod
    def decode(text: str) -> Any:
        """The summary or full form from its stored text (:func:`stored_json`)."""
        return json.loads(swap_quotes(text))

    @property
    def summary(self) -> Mapping[str, Any]:
        """Method, path, tags, credential types and scopes, and search fields."""
        if isinstance(self._summary, str):
            self._summary = self.decode(self._summary)
        return cast(Mapping[str, Any], self._summary)

    @property
    def operation(self) -> Mapping[str, Any]:
        """The operation in full, as :func:`build_request` uses it."""
        if isinstance(self._detail, str):
            self._detail = {
                "key": self.key,
                "name": self._name,
                "description": self.description,
                "effect": self.effect.value,
                **self.decode(self._detail),  # a full form stored before format 3 says it all
            }
        return self._detail

    @property
    def name(self) -> str:
        return self._name

    @property
    def Input(self) -> type[OpenAPIInput]:  # type: ignore[override]  # noqa: N802
        if self._input is None:
            self._input = self._make_input()
        return self._input

    @property
    def Output(self) -> type[OpenAPIOutput]:  # type: ignore[override]  # noqa: N802
        if self._output is None:
            model = create_model(
                f"{self._name}_Output",
                __base__=OpenAPIOutput,
                status=(int, Field(description="HTTP status of the response")),
                body=(Any, Field(default=None, description="The response body")),
                headers=(dict[str, str], Field(default_factory=dict, description="Headers")),
            )
            model.operation_schema = operation_output_schema(self.operation)
            self._output = model
        return self._output

    def search_fields(self) -> tuple[tuple[str, str], ...]:
        fields = self._fields
        if fields is None:
            fields = self.summary["fields"]
        elif isinstance(fields, str):
            fields = field_pairs(fields)
        return tuple((str(name), str(text)) for name, text in fields)

    def _make_input(self) -> type[OpenAPIInput]:
        schema = self.operation["input"]
        required = set(schema.get("required", ()))
        fields: dict[str, Any] = {}
        for name, prop in schema["properties"].items():
            description = str(prop.get("description") or name)
            default = ... if name in required else None
            fields[name] = (Any, Field(default, description=description))
        auth = self.operation.get("auth")
        if auth:
            _, field = credentials_property(
                self.source, tuple(auth["types"]), tuple(auth["scopes"])
            )
            fields["credentials"] = (CredentialsMetaInput, field())
        model = cast(
            type[OpenAPIInput],
            create_model(f"{self._name}_Input", __base__=OpenAPIInput, **fields),
        )
        model.operation_schema = operation_input_schema(self.source, self.operation)
        return model

    def validate_input(self, input_data: dict[str, Any]) -> Any:
        values = {k: v for k, v in input_data.items() if k != "credentials"}
        if self._validator is None:
            self._validator = Draft202012Validator(self.operation["input"])
        errors: dict[str, list[str]] = {}
        for err in self._validator.iter_errors(values):
            where = ".".join(str(p) for p in err.absolute_path) or "input_data"
            errors.setdefault(where, []).append(_safe_error(err))
        if errors:
            summary = "; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items())
            raise BlockInputError(
                f"Invalid input for {self.name}: {summary}",
                block_name=self.name,
                block_id=self.id,
                details={"errors": errors},
            )
        return super().validate_input(input_data)

    @staticmethod
    def given_arguments(input_data: Any) -> dict[str, Any]:
        """The inputs the model actually sent (defaults left to the API), credentials aside."""
        return {
            name: getattr(input_data, name)
            for name in input_data.model_fields_set
            if name != "credentials"
        }

    async def run(self, input_data: Any, **kwargs: Any) -> BlockOutput:
        context: ExecutionContext = kwargs["execution_context"]
        credentials: Credentials | None = kwargs.get("credentials")
        values = self.given_arguments(input_data)
        request = build_request(self.operation, self.base_url, values, credentials)
        client = source_client(
            context.http,
            self.base_url,
            trusted=self.trusted,
            follow_redirects=not request.secret_in_query,
        )
        try:
            response = await client.request(
                self.operation["method"].upper(),
                request.url,
                headers=request.headers,
                content=request.content,
                json=request.json,
                sensitive_headers=request.sensitive,
            )
        except NetworkError as exc:
            if request.secret_in_query and exc.details.get("max_redirects") == 0:
                raise BlockExecutionError(
                    f"{self.name}: the API answered with a redirect, which is not followed "
                    "while the API key travels in the query string",
                    block_name=self.name,
                    block_id=self.id,
                ) from None
            raise
        body = _parse_body(response)
        if response.status_code >= 400:
            text = response.text[:MAX_ERROR_BODY_CHARS]
            raise BlockExecutionError(
                f"{self.name}: the API answered HTTP {response.status_code}: {text}",
                block_name=self.name,
                block_id=self.id,
                details={"status": response.status_code, "body": text},
            )
        yield "status", response.status_code
        yield "body", body
        yield (
            "headers",
            {
                k.lower(): v
                for k, v in response.headers.items()
                if k.lower() in _USEFUL_HEADERS or k.lower().startswith("x-ratelimit")
            },
        )


def _parse_body(response: Any) -> Any:
    if not response.content:
        return None
    if "json" in response.headers.get("content-type", "").lower():
        try:
            return response.json()
        except ValueError:
            pass
    return response.text


class BuiltRequest:
    __slots__ = ("url", "headers", "sensitive", "content", "json", "secret_in_query")

    def __init__(self) -> None:
        self.url = ""
        self.headers: dict[str, str] = {}
        self.sensitive: dict[str, str] = {}
        self.content: bytes | str | None = None
        self.json: Any = None
        self.secret_in_query = False


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _query_pairs(param: Mapping[str, Any], value: Any) -> list[tuple[str, str]]:
    name = param["name"]
    if param.get("json"):
        return [(name, json.dumps(value, separators=(",", ":")))]
    style = param.get("style") or "form"
    explode = param.get("explode")
    explode = style == "form" if explode is None else bool(explode)
    if isinstance(value, list):
        if explode:
            return [(name, _text(v)) for v in value]
        sep = {"spaceDelimited": " ", "pipeDelimited": "|"}.get(style, ",")
        return [(name, sep.join(_text(v) for v in value))]
    if isinstance(value, dict):
        if style == "deepObject":
            return [(f"{name}[{k}]", _text(v)) for k, v in value.items()]
        if explode:
            return [(str(k), _text(v)) for k, v in value.items()]
        return [(name, ",".join(f"{k},{_text(v)}" for k, v in value.items()))]
    return [(name, _text(value))]


def _simple(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k},{_text(v)}" for k, v in value.items())
    return _text(value)


def _path_segment(name: str, value: Any) -> str:
    text = _simple(value)
    if text in ("", ".", ".."):
        raise BlockInputError(f"Path parameter {name!r} must not be empty, '.' or '..'")
    return quote(text, safe="")  # a value never adds path segments or changes the host


def _header_value(name: str, value: Any) -> str:
    text = _simple(value)
    if any(ch in text for ch in "\r\n\x00"):
        raise BlockInputError(f"Header parameter {name!r} must not contain line breaks")
    return text


def _multipart(fields: Mapping[str, Any]) -> tuple[bytes, str]:
    boundary = "blockpilot-" + secrets.token_hex(12)
    parts: list[bytes] = []
    for name, value in fields.items():
        safe = str(name).replace('"', "%22").replace("\r", "").replace("\n", "")
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{safe}"\r\n\r\n'.encode()
            + _text(value).encode()
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def build_request(
    op: Mapping[str, Any], base_url: str, values: Mapping[str, Any], creds: Credentials | None
) -> BuiltRequest:
    """The request for *values*: only to *base_url*, with the credential placed as declared."""
    built = BuiltRequest()
    path = op["path"]
    query: list[tuple[str, str]] = []
    cookies: list[str] = []
    for param in op["params"]:
        if param["field"] not in values:
            continue
        value = values[param["field"]]
        where = param["in"]
        if where == "path":
            path = path.replace("{" + param["name"] + "}", _path_segment(param["name"], value))
        elif where == "query":
            query += _query_pairs(param, value)
        elif where == "header":
            built.headers[param["name"]] = _header_value(param["name"], value)
        elif where == "cookie":
            cookies.append(f"{param['name']}={quote(_simple(value), safe='')}")
    body = op.get("body")
    if body is not None and body["field"] in values:
        value = values[body["field"]]
        media = body["media_type"].lower()
        if media.startswith("application/x-www-form-urlencoded"):
            built.content = urlencode({k: _text(v) for k, v in (value or {}).items()})
            built.headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif media.startswith("multipart/form-data"):
            built.content, built.headers["Content-Type"] = _multipart(value or {})
        elif media.startswith("text/plain"):
            built.content = _text(value)
            built.headers["Content-Type"] = "text/plain; charset=utf-8"
        else:
            built.json = value
            built.headers["Content-Type"] = body["media_type"]
    if creds is not None:
        placement = (op.get("auth") or {}).get("placements", {}).get(creds.type)
        if placement is None:
            raise BlockExecutionError(f"A {creds.type} credential cannot be used for this API")
        where = placement["in"]
        if where in ("bearer", "basic"):
            header = creds.auth_header()
            if header is None:
                raise BlockExecutionError(f"A {creds.type} credential has no token to send")
            built.sensitive["Authorization"] = header
        else:
            secret = _secret(creds)
            if where == "header":
                built.sensitive[placement["name"]] = secret
            elif where == "query":
                query.append((placement["name"], secret))
                built.secret_in_query = True
            elif where == "cookie":
                cookies.append(f"{placement['name']}={quote(secret, safe='')}")
    if cookies:
        # With a secret among them the whole Cookie header is sensitive (dropped on redirects
        # to another origin, and never logged).
        target = built.sensitive if creds is not None else built.headers
        target["Cookie"] = "; ".join(cookies)
    built.headers.setdefault("Accept", "application/json, */*;q=0.5")
    built.url = base_url + path + ("?" + urlencode(query, quote_via=quote) if query else "")
    return built


def _secret(creds: Credentials) -> str:
    for attr in ("api_key", "access_token"):
        value = getattr(creds, attr, None)
        if value is not None:
            return str(value.get_secret_value())
    raise BlockExecutionError(f"A {creds.type} credential cannot be sent as an API key")
