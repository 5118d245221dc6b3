"""Reading an OpenAPI description: JSON or YAML text, version checks, ``$ref`` lookup.

Problems are reported with the JSON path of the offending node (``$.paths./pets.get``), so
the operator knows what to fix (docs/sources.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from blockpilot.errors import RefError, SpecError

MAX_SPEC_BYTES = 32 * 1024 * 1024


# libyaml's loader where installed (about 10x faster on multi-megabyte descriptions).
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _SafeLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """YAML 1.1 safe loading without timestamp conversion (dates stay strings, as in JSON)."""


_SafeLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_document(text: str) -> dict[str, Any]:
    """Parse JSON or YAML text into the description's root object."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        raise SpecError.at("$", f"the description is larger than {MAX_SPEC_BYTES} bytes")
    stripped = text.lstrip()
    try:
        if stripped.startswith("{"):
            document = json.loads(text)
        else:
            document = yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a SafeLoader subclass
    except json.JSONDecodeError as exc:
        raise SpecError.at("$", f"not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise SpecError.at("$", f"not valid JSON or YAML{where}") from None
    if not isinstance(document, dict):
        raise SpecError.at("$", "the description must be a JSON/YAML object")
    _check_version(document)
    return document


def _check_version(document: Mapping[str, Any]) -> None:
    if "swagger" in document:
        raise SpecError.at(
            "$.swagger",
            f"Swagger {str(document['swagger'])[:10]} is not supported; convert it to "
            "OpenAPI 3 first (for example with swagger2openapi or the Swagger Editor)",
        )
    version = document.get("openapi")
    if not isinstance(version, str):
        raise SpecError.at("$.openapi", "missing: this is not an OpenAPI 3 description")
    if not version.startswith(("3.0", "3.1")):
        raise SpecError.at("$.openapi", f"version {version[:10]!r} is not supported (3.0 or 3.1)")
    paths = document.get("paths")
    if paths is not None and not isinstance(paths, dict):
        raise SpecError.at("$.paths", "must be an object")
    if not isinstance(document.get("info", {}), dict):
        raise SpecError.at("$.info", "must be an object")


def json_path(*parts: str) -> str:
    """``$.a.b`` with each part written as it is (paths keep their slashes)."""
    return "$" + "".join(f".{p}" for p in parts)


def resolve_pointer(document: Mapping[str, Any], ref: str) -> Any:
    """The node a local ``#/...`` reference names."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise RefError(f"external reference {str(ref)[:120]!r} is not supported")
    node: Any = document
    for raw in ref[1:].split("/")[1:] if ref != "#" else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise RefError(f"reference {ref[:120]!r} points nowhere")
    return node


def deref(document: Mapping[str, Any], node: Any, *, limit: int = 20) -> Any:
    """Follow a chain of ``$ref`` s (parameters, request bodies, responses)."""
    seen = 0
    while isinstance(node, Mapping) and "$ref" in node:
        node = resolve_pointer(document, node["$ref"])
        seen += 1
        if seen > limit:
            raise RefError("reference chain too long (a cycle?)")
    return node
