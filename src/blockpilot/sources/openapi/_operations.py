"""One OpenAPI operation → the stored description of one block (docs/sources.md).

The stored form (a JSON object per operation) holds everything the runtime block needs:
where each input goes (path, query, header, cookie, body), the input schema shown to the
model, the declared 2xx body schema, and how credentials are applied. Building a block
from it needs no further parsing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from blockpilot.blocks.base import BlockEffect
from blockpilot.errors import RefError, SkipOperation, SpecError
from blockpilot.sources.openapi._document import deref, json_path
from blockpilot.sources.openapi._schema import convert_schema, has_binary

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
READ_METHODS = frozenset({"get", "head", "options"})
# Set by the client or by the credential; an operation's own parameter cannot set them.
_MANAGED_HEADERS = frozenset({"accept", "content-type", "authorization", "content-length", "host"})
_MAX_BLOCK_DESCRIPTION = 1_000
NO_INPUT_FIELD = "confirm"
_JSON_TYPES = ("application/json",)
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"


@dataclass(frozen=True, slots=True)
class SecurityPlan:
    """How a source's credentials are applied: per credential type, where the secret goes."""

    placements: dict[str, dict[str, Any]]  # credential type → placement
    oauth2: dict[str, Any] | None  # authorize/token URLs and scopes of the oauth2 scheme


def effect_of(method: str) -> BlockEffect:
    if method in READ_METHODS:
        return BlockEffect.READ
    if method == "delete":
        return BlockEffect.DESTRUCTIVE
    return BlockEffect.WRITE


def scheme_placement(scheme: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """``(credential type, placement)`` for a security scheme, or None if not supported."""
    kind = scheme.get("type")
    if kind == "apiKey":
        where, name = scheme.get("in"), scheme.get("name")
        if where in ("header", "query", "cookie") and isinstance(name, str) and name:
            return "api_key", {"in": where, "name": name}
        return None
    if kind == "http":
        method = str(scheme.get("scheme", "")).lower()
        if method == "bearer":
            return "api_key", {"in": "bearer"}
        if method == "basic":
            return "user_password", {"in": "basic"}
        return None
    if kind == "oauth2":
        return "oauth2", {"in": "bearer"}
    return None


def oauth2_config(scheme: Mapping[str, Any]) -> dict[str, Any] | None:
    """Authorize/token URLs and scopes of an oauth2 scheme (authorization code preferred)."""
    flows = scheme.get("flows")
    if not isinstance(flows, Mapping):
        return None
    for flow_name in ("authorizationCode", "implicit", "clientCredentials", "password"):
        flow = flows.get(flow_name)
        if isinstance(flow, Mapping):
            raw = flow.get("scopes")
            scopes: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
            return {
                "flow": flow_name,
                "authorize_url": str(flow.get("authorizationUrl") or ""),
                "token_url": str(flow.get("tokenUrl") or ""),
                "scopes": {str(k): str(v)[:200] for k, v in scopes.items()},
            }
    return None


def operation_auth(
    document: Mapping[str, Any], operation: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The credential requirement of an operation, or None when it needs none.

    Each ``security`` alternative naming one supported scheme adds its credential type;
    alternatives that need several schemes at once cannot be met with one credential.
    """
    security = operation.get("security", document.get("security", []))
    if not isinstance(security, list) or not security:
        return None
    if any(isinstance(alt, Mapping) and not alt for alt in security):
        return None  # "{}" among the alternatives: anonymous access is allowed
    schemes = (document.get("components") or {}).get("securitySchemes") or {}
    placements: dict[str, dict[str, Any]] = {}
    scopes: list[str] = []
    unsupported: list[str] = []
    for alt in security:
        if not isinstance(alt, Mapping) or len(alt) != 1:
            unsupported.append("+".join(map(str, alt)) if isinstance(alt, Mapping) else "?")
            continue
        ((name, alt_scopes),) = alt.items()
        try:
            scheme = deref(document, schemes.get(name))
        except RefError:
            scheme = None
        found = scheme_placement(scheme) if isinstance(scheme, Mapping) else None
        if found is None:
            kind = scheme.get("type") if isinstance(scheme, Mapping) else "missing"
            unsupported.append(f"{name} ({kind})")
            continue
        cred_type, placement = found
        if cred_type not in placements:
            placements[cred_type] = {**placement, "scheme": str(name)}
            if cred_type == "oauth2" and isinstance(alt_scopes, list):
                scopes = [str(s) for s in alt_scopes]
    if not placements:
        raise SkipOperation(
            "security scheme(s) not supported: "
            + ", ".join(unsupported)
            + " (supported: apiKey, http bearer/basic, oauth2, one scheme per alternative)"
        )
    return {"types": sorted(placements), "placements": placements, "scopes": sorted(scopes)}


_FIELD_CHARS = re.compile(r"[^A-Za-z0-9_]+")


def _field_name(raw: str, taken: set[str], where: str) -> str:
    name = _FIELD_CHARS.sub("_", raw).strip("_") or "value"
    if name[0].isdigit():
        name = "p_" + name
    if name == "credentials" or name.endswith("_credentials"):
        name += "_value"
    if hasattr(BaseModel, name) or name.startswith("model_"):
        name += "_"
    if name in taken:
        name = f"{name}_{where}"
    base, n = name, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _merge_parameters(
    document: Mapping[str, Any],
    path_item: Mapping[str, Any],
    operation: Mapping[str, Any],
    where: str,
) -> list[dict[str, Any]]:
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for level, params in (
        ("path", path_item.get("parameters")),
        ("op", operation.get("parameters")),
    ):
        if params is None:
            continue
        if not isinstance(params, list):
            raise SpecError.at(f"{where}.parameters", "must be a list")
        for i, raw in enumerate(params):
            try:
                param = deref(document, raw)
            except RefError as exc:
                raise SkipOperation(f"parameter {i}: {exc}") from None
            if not isinstance(param, Mapping) or not isinstance(param.get("name"), str):
                raise SkipOperation(f"parameter {i} ({level} level) has no name")
            if param.get("in") not in ("path", "query", "header", "cookie"):
                raise SkipOperation(f"parameter {param['name']!r} has an unknown 'in'")
            merged[(param["name"], param["in"])] = dict(param)
    return list(merged.values())


def _param_schema(
    document: Mapping[str, Any], param: Mapping[str, Any]
) -> tuple[dict[str, Any], bool]:
    """The parameter's JSON schema, and whether its value is sent as JSON text (``content``)."""
    if "schema" in param:
        return convert_schema(document, param["schema"]), False
    content = param.get("content")
    if isinstance(content, Mapping) and content:
        media = next(iter(content.values()))
        schema = media.get("schema") if isinstance(media, Mapping) else None
        return convert_schema(document, schema), True
    return {"type": "string"}, False


def _body(
    document: Mapping[str, Any], operation: Mapping[str, Any]
) -> tuple[dict[str, Any], str, bool, str] | None:
    """(schema, media type, required, description) of the request body, or None."""
    raw = operation.get("requestBody")
    if raw is None:
        return None
    body = deref(document, raw)
    if not isinstance(body, Mapping):
        raise SkipOperation("request body is not an object")
    content = body.get("content")
    if not isinstance(content, Mapping) or not content:
        return None
    media_types = [str(m) for m in content]
    chosen = next(
        (m for m in media_types if m.split(";")[0].strip().lower() in _JSON_TYPES), None
    ) or next((m for m in media_types if m.split(";")[0].strip().lower().endswith("+json")), None)
    for fallback in (_FORM, _MULTIPART, "text/plain"):
        if chosen is None:
            chosen = next((m for m in media_types if m.lower().startswith(fallback)), None)
    if chosen is None:
        raise SkipOperation(f"request body media type(s) not supported: {', '.join(media_types)}")
    media = content[chosen] if isinstance(content[chosen], Mapping) else {}
    raw_schema = media.get("schema", {})
    lowered = chosen.lower()
    if lowered.startswith("text/plain"):
        schema: dict[str, Any] = {"type": "string"}
    else:
        schema = convert_schema(document, raw_schema)
    if has_binary(schema):
        raise SkipOperation(f"request body ({chosen}) uploads binary data, which is not supported")
    if lowered.startswith((_FORM, _MULTIPART)) and not _flat_object(schema):
        raise SkipOperation(f"request body ({chosen}) is not a flat object of simple values")
    description = str(body.get("description") or "").strip()
    return schema, chosen, bool(body.get("required")), description


def _flat_object(schema: Mapping[str, Any]) -> bool:
    props = schema.get("properties")
    if schema.get("type") not in ("object", None) or not isinstance(props, Mapping):
        return False
    return all(
        isinstance(p, Mapping) and p.get("type") in ("string", "integer", "number", "boolean")
        for p in props.values()
    )


def _success_body(
    document: Mapping[str, Any], operation: Mapping[str, Any]
) -> dict[str, Any] | None:
    responses = operation.get("responses")
    if not isinstance(responses, Mapping):
        return None
    for code in sorted(str(c) for c in responses):
        if not (code.startswith("2") or code == "default"):
            continue
        try:
            response = deref(
                document, responses.get(code, responses.get(int(code) if code.isdigit() else code))
            )
            content = response.get("content") if isinstance(response, Mapping) else None
            if isinstance(content, Mapping):
                for media_type, media in content.items():
                    if (
                        "json" in str(media_type)
                        and isinstance(media, Mapping)
                        and "schema" in media
                    ):
                        return convert_schema(
                            document, media["schema"], direction="response", max_depth=2
                        )
        except RefError:
            return None
        if code.startswith("2"):
            return None
    return None


def _description(operation: Mapping[str, Any], method: str, path: str) -> str:
    summary = " ".join(str(operation.get("summary") or "").split())
    detail = " ".join(str(operation.get("description") or "").split())
    text = summary
    if detail and detail != summary:
        joiner = " " if summary.endswith((".", "!", "?", ":")) else ". "
        text = f"{summary}{joiner}{detail}" if summary else detail
    text = text or f"{method.upper()} {path}"
    return text if len(text) <= _MAX_BLOCK_DESCRIPTION else text[: _MAX_BLOCK_DESCRIPTION - 1] + "…"


def convert_operation(
    document: Mapping[str, Any],
    path: str,
    method: str,
    path_item: Mapping[str, Any],
    operation: Mapping[str, Any],
    security_fields: set[tuple[str, str]],
) -> dict[str, Any]:
    """The stored description of one operation's block. Raises :class:`SkipOperation`."""
    where = json_path("paths", path, method)
    try:
        params = _merge_parameters(document, path_item, operation, where)
        auth = operation_auth(document, operation)
        body = _body(document, operation)
        output_body = _success_body(document, operation)
    except RefError as exc:
        raise SkipOperation(str(exc)) from None
    taken: set[str] = set()
    properties: dict[str, Any] = {}
    required: list[str] = []
    stored_params: list[dict[str, Any]] = []
    body_field = "request_body" if any(p["name"] == "body" for p in params) else "body"
    if body is not None:
        taken.add(body_field)
    for param in params:
        name, where_in = param["name"], param["in"]
        if where_in == "header" and name.lower() in _MANAGED_HEADERS:
            continue
        if auth is not None and (where_in, name.lower()) in security_fields:
            continue  # the credential fills it
        try:
            schema, as_json = _param_schema(document, param)
        except RefError as exc:
            raise SkipOperation(f"parameter {name!r}: {exc}") from None
        if has_binary(schema):
            raise SkipOperation(f"parameter {name!r} is binary, which is not supported")
        field = _field_name(name, taken, where_in)
        note = str(param.get("description") or "").strip()
        schema = dict(schema)
        schema["description"] = (
            " ".join(note.split())[:400]
            if note
            else schema.get("description") or f"{where_in} parameter {name!r}"
        )
        if where_in == "path" and "minLength" not in schema and schema.get("type") == "string":
            schema["minLength"] = 1
        properties[field] = schema
        is_required = where_in == "path" or bool(param.get("required"))
        if is_required:
            required.append(field)
        stored_params.append(
            {
                "field": field,
                "name": name,
                "in": where_in,
                "style": param.get("style"),
                "explode": param.get("explode"),
                "json": as_json,
            }
        )
    stored_body = None
    if body is not None:
        schema, media_type, body_required, note = body
        schema = dict(schema)
        schema["description"] = (
            " ".join(note.split())[:400]
            if note
            else schema.get("description") or f"Request body ({media_type})"
        )
        properties[body_field] = schema
        if body_required:
            required.append(body_field)
        stored_body = {"field": body_field, "media_type": media_type, "required": body_required}
    for name in re.findall(r"{([^}]+)}", path):
        if not any(p["in"] == "path" and p["name"] == name for p in stored_params):
            raise SkipOperation(f"path template variable {{{name}}} has no parameter")
    if not properties:
        # run_block shows the schema for a call without inputs (docs/sources.md): an
        # operation that takes none gets one explicit input, so a model can still run it.
        properties[NO_INPUT_FIELD] = {
            "type": "boolean",
            "const": True,
            "description": "Set to true to call the API (this operation takes no other inputs)",
        }
        required.append(NO_INPUT_FIELD)
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        input_schema["required"] = required
    key = str(operation.get("operationId") or f"{method.upper()} {path}")
    tags = [str(t) for t in operation.get("tags") or () if isinstance(t, str | int)]
    return {
        "key": key,
        "method": method,
        "path": path,
        "description": _description(operation, method, path),
        "tags": tags,
        "effect": effect_of(method).value,
        "deprecated": bool(operation.get("deprecated")),
        "params": stored_params,
        "body": stored_body,
        "input": input_schema,
        "output_body": output_body,
        "auth": auth,
    }


def security_plan(
    document: Mapping[str, Any],
) -> tuple[set[tuple[str, str]], dict[str, Any] | None]:
    """Where the source's credentials go (to hide those parameters) and its oauth2 flow."""
    schemes = (document.get("components") or {}).get("securitySchemes") or {}
    fields: set[tuple[str, str]] = set()
    oauth: dict[str, Any] | None = None
    if not isinstance(schemes, Mapping):
        raise SpecError.at("$.components.securitySchemes", "must be an object")
    for name, raw in schemes.items():
        try:
            scheme = deref(document, raw)
        except RefError as exc:
            raise SpecError.at(
                json_path("components", "securitySchemes", str(name)), str(exc)
            ) from None
        if not isinstance(scheme, Mapping):
            raise SpecError.at(
                json_path("components", "securitySchemes", str(name)), "must be an object"
            )
        if scheme.get("type") == "apiKey" and isinstance(scheme.get("name"), str):
            fields.add((str(scheme.get("in")), scheme["name"].lower()))
        if scheme.get("type") == "oauth2" and oauth is None:
            oauth = oauth2_config(scheme)
            if oauth is not None:
                oauth["scheme"] = str(name)
    return fields, oauth
