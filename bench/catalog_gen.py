"""A generated catalogue with a realistic, varied vocabulary, and labelled queries over it.

Every block is one (service, object, action, qualifier) combination of
:mod:`bench.catalog_words` (about 360,000 possible), drawn with a fixed seed. Two forms:

* :func:`block_classes` — one ``Block`` subclass per block, each with its own small
  ``Input``/``Output`` pydantic models, registered through the public ``BlockRegistry`` API;
* :func:`openapi_documents` — one OpenAPI description per service, imported as a stored
  source (docs/sources.md): blocks built from stored rows, no per-block Python classes.

:func:`labelled_queries` phrases requests the way a user would (another verb than the block
name's, plurals, a typo, the service left out, a whole sentence) and lists the blocks that
answer each one.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from pydantic import create_model

from bench.catalog_words import ACTIONS, DOMAINS, GENERIC_SENTENCES, QUALIFIERS
from blockpilot.blocks.base import Block, BlockCategory, BlockOutput
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, SchemaField

NAMESPACE = uuid.UUID("b3e0c7a2-5ca1-4e00-8000-00000000ca7a")
_PLURAL_ACTIONS = frozenset({"list", "search", "export", "import", "sync", "count", "merge"})
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]+")


def _camel(text: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in _NON_ALNUM.split(text) if w)


def _snake(text: str) -> str:
    return _NON_ALNUM.sub("_", text.lower()).strip("_")


def plural(noun: str) -> str:
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


@dataclass(frozen=True, slots=True)
class Spec:
    """One generated block."""

    domain: str
    category: BlockCategory
    service: str
    obj: str
    action: str
    qualifier: int
    name: str
    description: str
    inputs: tuple[tuple[str, str, str], ...]  # (field, type, description)
    outputs: tuple[tuple[str, str, str], ...]

    @property
    def id(self) -> str:
        return str(uuid.uuid5(NAMESPACE, self.name))

    @property
    def group(self) -> tuple[str, str, str]:
        """Blocks that answer the same request whatever their qualifier."""
        return (self.service, self.obj, self.action)


def _combinations() -> list[tuple[str, str, str, str, int]]:
    combos = []
    for domain, (_, services, objects, _) in DOMAINS.items():
        for service in services:
            for obj in objects:
                for action in ACTIONS:
                    for q in range(len(QUALIFIERS)):
                        combos.append((domain, service, obj, action, q))
    return combos


def _spec(domain: str, service: str, obj: str, action: str, q: int, rng: random.Random) -> Spec:
    category, _, _, purposes = DOMAINS[domain]
    verbs, templates = ACTIONS[action]
    suffix, phrase, extra = QUALIFIERS[q]
    objs = plural(obj)
    noun = objs if action in _PLURAL_ACTIONS else obj
    name = f"{_camel(service)}{_camel(verbs[0])}{_camel(noun)}{suffix}Block"
    fill = {"svc": service, "obj": obj, "objs": objs, "purpose": rng.choice(purposes)}
    sentences = [rng.choice(templates).format(**fill)]
    if phrase:
        sentences[0] = sentences[0][:-1] + f", {phrase}."
    sentences += [s.format(**fill) for s in rng.sample(GENERIC_SENTENCES, rng.randint(1, 3))]
    o = _snake(obj)
    inputs: list[tuple[str, str, str]] = []
    if action in {"create", "import"}:
        inputs.append(("fields", "dict", f"Values of the new {obj} (name, owner, notes)"))
    elif action in {"list", "search", "count", "export", "sync", "watch", "summarize"}:
        inputs.append(("query", "str", f"Words to filter the {objs} by"))
        inputs.append(("limit", "int", f"Most {objs} to return"))
    else:
        inputs.append((f"{o}_id", "str", f"The id of the {obj} in {service}"))
    if extra is not None:
        field, text = extra
        inputs.append((field.format(o=o), "str", text.format(obj=obj, objs=objs, svc=service)))
    if action == "count":
        outputs = [("count", "int", f"How many {objs} matched")]
    elif action in _PLURAL_ACTIONS:
        outputs = [(_snake(objs), "list", f"The {objs} as {service} returns them")]
    else:
        outputs = [(o, "dict", f"The {obj} as {service} returns it")]
    return Spec(
        domain=domain,
        category=category,
        service=service,
        obj=obj,
        action=action,
        qualifier=q,
        name=name,
        description=" ".join(sentences),
        inputs=tuple(dict.fromkeys(inputs)),
        outputs=tuple(outputs),
    )


def generate(count: int, seed: int = 17) -> list[Spec]:
    """*count* distinct blocks drawn from every combination, the same for the same seed."""
    combos = _combinations()
    if count > len(combos):
        raise ValueError(f"at most {len(combos)} generated blocks")
    rng = random.Random(seed)
    picked = sorted(rng.sample(range(len(combos)), count))
    return [_spec(*combos[i], rng) for i in picked]


_TYPES: dict[str, Any] = {"str": str, "int": int, "dict": dict[str, Any], "list": list[Any]}


async def _run(self: Block, input_data: Any, **kwargs: Any) -> BlockOutput:
    for name in self.Output.model_fields:
        if name != "error":
            yield name, None
            return


def block_classes(specs: list[Spec]) -> list[type[Block]]:
    """One Block subclass per spec, each with its own ``Input`` and ``Output`` models."""
    classes: list[type[Block]] = []
    for spec in specs:
        stem = spec.name[: -len("Block")]
        inputs: dict[str, Any] = {
            field: (_TYPES[kind], SchemaField(description=text) if kind == "str" else
                    SchemaField(None, description=text))
            for field, kind, text in spec.inputs
        }  # fmt: skip
        outputs: dict[str, Any] = {
            field: (_TYPES[kind], SchemaField(description=text))
            for field, kind, text in spec.outputs
        }
        classes.append(
            type(
                spec.name,
                (Block,),
                {
                    "id": spec.id,
                    "description": spec.description,
                    "categories": frozenset({spec.category}),
                    "Input": create_model(f"{stem}Input", __base__=BlockSchemaInput, **inputs),
                    "Output": create_model(f"{stem}Output", __base__=BlockSchemaOutput, **outputs),
                    "run": _run,
                    "__module__": __name__,
                },
            )
        )
    return classes


def source_name(service: str) -> str:
    name = _snake(service)
    return ("s_" + name if not name[:1].isalpha() else name)[:40]


def source_block_name(spec: Spec) -> str:
    """The name the spec's operation gets as a block of its OpenAPI source."""
    return f"{source_name(spec.service)}_{_operation_id(spec)}"


def _operation_id(spec: Spec) -> str:
    return spec.name[len(_camel(spec.service)) : -len("Block")]


_JSON_TYPES = {"str": "string", "int": "integer", "dict": "object", "list": "array"}
_METHODS = {"create": "post", "get": "get", "list": "get", "update": "patch", "delete": "delete"}


def openapi_documents(specs: list[Spec]) -> dict[str, str]:
    """One OpenAPI 3.1 description per service (source name -> JSON text)."""
    by_service: dict[str, list[Spec]] = defaultdict(list)
    for spec in specs:
        by_service[spec.service].append(spec)
    documents = {}
    for service, items in by_service.items():
        paths: dict[str, Any] = {}
        for spec in items:
            method = _METHODS.get(spec.action, "post")
            operation_id = _operation_id(spec)
            properties = {
                field: {"type": _JSON_TYPES[kind], "description": text}
                for field, kind, text in spec.inputs
            }
            operation: dict[str, Any] = {
                "operationId": operation_id,
                "summary": spec.description.split(". ")[0].rstrip("."),
                "description": spec.description,
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        field: {"type": _JSON_TYPES[kind], "description": text}
                                        for field, kind, text in spec.outputs
                                    },
                                }
                            }
                        },
                    }
                },
            }
            if method in {"get", "delete"}:
                operation["parameters"] = [
                    {"name": field, "in": "query", "description": p["description"],
                     "schema": {"type": "string" if p["type"] in {"object", "array"}
                                else p["type"]}}
                    for field, p in properties.items()
                ]  # fmt: skip
            else:
                operation["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"type": "object", "properties": properties}}
                    },
                }
            paths[f"/{_snake(spec.obj)}/{_snake(operation_id)}"] = {method: operation}
        documents[source_name(service)] = json.dumps(
            {
                "openapi": "3.1.0",
                "info": {"title": f"{service} API", "version": "1.0"},
                "servers": [{"url": "https://api.example.com"}],
                "paths": paths,
            }
        )
    return documents


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 5:
        return word
    j = rng.randrange(1, len(word) - 2)
    return word[:j] + word[j + 1] + word[j] + word[j + 2 :]  # one transposition


def labelled_queries(specs: list[Spec], count: int, seed: int = 23) -> list[dict[str, Any]]:
    """*count* queries with the names of the blocks that answer each (any one counts).

    Kinds: ``verb`` (another verb than the name's, service and object named), ``qualified``
    (with the qualifier's phrase: one block answers), ``no_service`` (any service's block
    answers), ``typo`` (one transposition in the object or service), ``sentence`` (a whole
    request), ``name`` (the block's exact name, spaced).
    """
    rng = random.Random(seed)
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    by_task: dict[tuple[str, str], list[str]] = defaultdict(list)
    for spec in specs:
        groups[spec.group].append(spec.name)
        by_task[(spec.obj, spec.action)].append(spec.name)
    kinds = ("verb", "qualified", "no_service", "typo", "sentence", "name")
    queries = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        spec = rng.choice(specs)
        verbs = ACTIONS[spec.action][0]
        verb = rng.choice(verbs[1:] if len(verbs) > 1 else verbs).lower()
        noun = plural(spec.obj) if spec.action in _PLURAL_ACTIONS else spec.obj
        service = spec.service.lower()
        relevant = groups[spec.group]
        if kind == "verb":
            text = f"{verb} {service} {noun}"
        elif kind == "qualified":
            if spec.qualifier == 0:
                text = f"{verb} {noun} in {service}"
            else:
                text = f"{verb} {service} {noun} {QUALIFIERS[spec.qualifier][1]}"
                relevant = [spec.name]
        elif kind == "no_service":
            text = f"{verb} {noun}"
            relevant = by_task[(spec.obj, spec.action)]
        elif kind == "typo":
            words = noun.split()
            words[-1] = _typo(words[-1], rng)
            text = f"{verb} {' '.join(words)} {service}"
        elif kind == "sentence":
            text = f"I need to {verb} a {spec.obj} in my {spec.service} account"
        else:
            text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", spec.name[: -len("Block")])
            relevant = [spec.name]
        queries.append({"query": text, "kind": kind, "relevant": sorted(relevant)})
    return queries


__all__ = [
    "Spec",
    "block_classes",
    "generate",
    "labelled_queries",
    "openapi_documents",
    "plural",
    "source_block_name",
    "source_name",
]
