"""Hypothesis on the functions that guard everything else (docs/security.md#property-tests).

* input validation: ``input_shape_problem`` and every copilot block's input validation,
  and ``run_block`` end to end on random inputs (never an internal error);
* the URL guard: whatever URL and DNS answers, no connection to a blocked address, and
  only typed errors;
* the host matcher: a URL it accepts is, to the HTTP client, that very host, port and
  scheme (no parser differential);
* path containment: every accepted path stays inside a root, canonical and idempotent;
* redaction: a random secret inside random text never survives scrubbing, in any form;
* the strict JSON parser: random bytes give a value or its one error type.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import posixpath
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import httpcore
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from blockpilot.blocks.registry import BlockRegistry
from blockpilot.credentials.hosts import HostPattern
from blockpilot.errors import (
    BlockInputError,
    BlockpilotError,
    DestinationBlockedError,
    InvalidInputError,
    WorkspacePathError,
)
from blockpilot.net import DestinationPolicy, GuardedHTTPClient
from blockpilot.net._ranges import is_blocked_address
from blockpilot.net._transport import PinnedTransport
from blockpilot.net.urls import normalise_host, parse_destination
from blockpilot.pilot import Pilot
from blockpilot.redaction import REDACTED, Redactor
from blockpilot.runner import MAX_INPUT_DEPTH, input_shape_problem
from blockpilot.strict_json import MAX_DEPTH, StrictJSONError, loads_strict
from blockpilot.workspaces.paths import normalise_path
from tests.security.sec_helpers import StubResolver

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
json_value = st.recursive(
    json_leaf,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=60,
)


def _nested(depth: int, leaf: Any = 1, kind: str = "list") -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


# --------------------------------------------------------------------------- input validation


@pytest.mark.slow
@FAST
@given(json_value, st.integers(1024, 1 << 20))
def test_input_shape_problem_never_raises(value: Any, max_bytes: int) -> None:
    problem = input_shape_problem(value, max_bytes=max_bytes)
    assert problem is None or isinstance(problem, str)
    if problem is None:
        assert _depth(value) <= MAX_INPUT_DEPTH
        assert len(json.dumps(value, default=str)) <= 8 * max_bytes


@FAST
@given(st.integers(0, 400), st.sampled_from(["list", "dict"]))
@example(10_000, "list")
@example(10_000, "dict")
def test_input_shape_problem_refuses_exactly_the_too_deep(depth: int, kind: str) -> None:
    problem = input_shape_problem({"v": _nested(depth, kind=kind)}, max_bytes=1 << 20)
    assert (problem is not None) == (depth + 1 >= MAX_INPUT_DEPTH)


_REGISTRY = BlockRegistry()


def _block_fields() -> list[tuple[str, type]]:
    return [(block.id, type(block)) for block in _REGISTRY.all()]


@SLOW
@given(
    st.sampled_from([b for b in _REGISTRY.all()]),
    st.dictionaries(st.text(max_size=12), json_value, max_size=8),
)
@pytest.mark.slow
def test_block_input_validation_raises_only_its_own_error(block: Any, data: dict[str, Any]) -> None:
    names = sorted(block.Input.field_names())
    data = {**{n: v for n, v in zip(names, data.values(), strict=False)}, **data}
    with contextlib.suppress(BlockInputError):
        block.validate_input(data)


@pytest.mark.slow
def test_run_block_on_random_inputs_is_never_an_internal_error(settings_factory: Any) -> None:
    """run_block end to end on random input_data for every block the copilot may run
    (network blocks get a resolver that knows no name and an internet with no route)."""
    from tests.security.sec_helpers import guard_pilot, guarded_client

    with asyncio.Runner() as loop:
        pilot = loop.run(Pilot.open(settings_factory()))
        client, _ = guarded_client(StubResolver({}), timeout_seconds=2.0)
        loop.run(guard_pilot(pilot, client))
        user, _ = loop.run(pilot.users.create("fuzz"))
        blocks = [b for b in pilot.registry.all() if not pilot.catalog.exclusions.excludes(b)]
        codes: set[str] = set()

        @SLOW
        @given(
            st.sampled_from(blocks),
            st.dictionaries(st.text(max_size=12), json_value, max_size=8),
            st.data(),
        )
        def run(block: Any, extra: dict[str, Any], data: st.DataObject) -> None:
            names = sorted(block.Input.field_names())
            chosen = (
                data.draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
                if names
                else []
            )
            values = {name: data.draw(json_value) for name in chosen}
            response = loop.run(
                pilot.call_tool(
                    "run_block",
                    {"block_id": block.id, "input_data": {**values, **extra}},
                    user_id=user.id,
                )
            )
            document = json.loads(response.to_json())
            assert document.get("code") != "internal_error", document
            codes.add(document["type"])

        try:
            run()
        finally:
            loop.run(pilot.close())
    assert {"input_validation_error"} <= codes


# --------------------------------------------------------------------------- the URL guard


class RecordingNet(httpcore.AsyncNetworkBackend):
    """Never connects; records where the client tried to go."""

    def __init__(self) -> None:
        self.connects: list[str] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> Any:
        self.connects.append(host)
        raise httpcore.ConnectError("recorded, not connected")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _ipv4_spellings(n: int) -> list[str]:
    a, b, c, d = n >> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255
    return [
        f"{a}.{b}.{c}.{d}",
        str(n),
        hex(n),
        f"0{a:o}.{b}.{c}.{d}",
        f"{a}.{(b << 16) | (c << 8) | d}",
        f"[::ffff:{a}.{b}.{c}.{d}]",
        f"[64:ff9b::{a}.{b}.{c}.{d}]",
        f"[::ffff:0:{a}.{b}.{c}.{d}]",
    ]


interesting_v4 = st.sampled_from(
    [0x7F000001, 0x0A000001, 0xA9FEA9FE, 0xC0A80101, 0x64400001, 0, 0x5DB8D70E, 0x08080808]
)
hosts = st.one_of(
    st.builds(
        lambda n, i: _ipv4_spellings(n)[i],
        st.one_of(interesting_v4, st.integers(0, 2**32 - 1)),
        st.integers(0, 7),
    ),
    st.sampled_from(
        [
            "localhost",
            "LOCALHOST.",
            "a.localhost",
            "x.test",
            "metadata.google.internal",
            "[::1]",
            "[fe80::1%25lo]",
            "[fd00::1]",
            "[2002:7f00:1::]",
            "xn--localhost-",
            "ｌｏｃａｌｈｏｓｔ",
            "１２７.０.０.１",
            "public.test",
        ]
    ),
    st.text(alphabet=st.sampled_from("abc.-_0x7f:[]%@\\\t\u3002\uff0e1"), min_size=1, max_size=20),
)
answers = st.lists(
    st.one_of(
        st.builds(
            lambda n: f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}",
            st.integers(0, 2**32 - 1),
        ),
        st.sampled_from(
            [
                "127.0.0.1",
                "::1",
                "::ffff:127.0.0.1",
                "fe80::1",
                "93.184.215.14",
                "2606:4700::1",
                "64:ff9b::a00:1",
            ]
        ),
    ),
    min_size=1,
    max_size=3,
)


@SLOW
@given(
    st.sampled_from(["http", "https", "HTTP", "ftp", "file", "gopher", ""]),
    hosts,
    st.one_of(st.none(), st.integers(0, 70000)),
    st.sampled_from(["", "u:p@", "@", "a@b@"]),
    st.text(max_size=10),
    answers,
)
def test_the_url_guard_never_connects_to_a_blocked_address(
    scheme: str, host: str, port: int | None, userinfo: str, path: str, dns: list[str]
) -> None:
    url = f"{scheme}://{userinfo}{host}" + (f":{port}" if port is not None else "") + "/" + path
    backend = RecordingNet()
    client = GuardedHTTPClient(
        DestinationPolicy(timeout_seconds=2.0),
        resolver=_AnyName(dns),
        transport=PinnedTransport(network_backend=backend),
    )

    async def go() -> None:
        try:
            await client.request("GET", url)
        except BlockpilotError:
            pass
        finally:
            await client.aclose()

    asyncio.run(go())
    for address in backend.connects:
        from ipaddress import ip_address

        assert not is_blocked_address(ip_address(address.split("%")[0])), (url, dns, address)


class _AnyName:
    def __init__(self, dns: list[str]) -> None:
        self.dns = dns

    async def __call__(self, host: str, port: int) -> list[str]:
        return list(self.dns)


@FAST
@given(st.text(max_size=60))
def test_parse_destination_raises_only_the_typed_refusal(url: str) -> None:
    try:
        dest = parse_destination(url, frozenset({"http", "https"}))
    except DestinationBlockedError:
        return
    assert dest.scheme in ("http", "https") and dest.host and 0 < dest.port < 65536


# --------------------------------------------------------------------------- the host matcher

labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)
base_hosts = st.builds(
    lambda a, b: f"{a}.{b}", labels, st.sampled_from(["test", "example.com", "co.uk"])
)
homoglyphs = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "i": "і"}


@st.composite
def pattern_and_url(draw: st.DrawFn) -> tuple[str, str]:
    host = draw(base_hosts)
    wildcard = draw(st.booleans())
    pattern_port = draw(st.one_of(st.none(), st.sampled_from([443, 8443, 8080])))
    pattern_scheme = draw(st.sampled_from(["", "https://", "http://"]))
    pattern = (
        pattern_scheme
        + ("*." if wildcard else "")
        + host
        + (f":{pattern_port}" if pattern_port else "")
    )
    mutation = draw(
        st.sampled_from(
            [
                "same",
                "sub",
                "prefix",
                "suffix",
                "glyph",
                "case",
                "dot",
                "userinfo",
                "backslash",
                "fragment",
                "query",
                "percent",
                "tab",
                "fullwidth",
            ]
        )
    )
    url_host = {
        "same": host,
        "sub": f"x.{host}",
        "prefix": f"evil{host}",
        "suffix": f"{host}.evil.test",
        "glyph": "".join(homoglyphs.get(ch, ch) for ch in host),
        "case": host.upper(),
        "dot": host + ".",
        "userinfo": f"{host}@evil.test",
        "backslash": f"evil.test\\.{host}",
        "fragment": f"evil.test#.{host}",
        "query": f"evil.test?.{host}",
        "percent": f"evil.test%2f.{host}",
        "tab": f"ev\til.{host}",
        "fullwidth": host.replace(".", "\uff0e"),
    }[mutation]
    scheme = draw(st.sampled_from(["https", "http", "HTTPS", "ws"]))
    port = draw(st.one_of(st.none(), st.sampled_from([80, 443, 8443, 8080, 9999])))
    url = (
        f"{scheme}://{url_host}"
        + (f":{port}" if port else "")
        + draw(st.sampled_from(["/", "/x?y=1", ""]))
    )
    return pattern, url


@FAST
@given(pattern_and_url())
def test_a_url_the_matcher_accepts_is_that_host_to_the_client(case: tuple[str, str]) -> None:
    pattern_text, url = case
    try:
        pattern = HostPattern.parse(pattern_text)
    except InvalidInputError:
        return
    if not pattern.matches_url(url):
        return
    try:
        dest = parse_destination(url, frozenset({"http", "https"}))
    except DestinationBlockedError:
        return  # the client would refuse it anyway
    domain = pattern.host[2:] if pattern.host.startswith("*.") else pattern.host
    if pattern.host.startswith("*."):
        assert dest.host == domain or dest.host.endswith("." + domain), (
            pattern_text,
            url,
            dest.host,
        )
    else:
        assert dest.host == pattern.host, (pattern_text, url, dest.host)
    if pattern.port is not None:
        assert dest.port == pattern.port
    else:
        assert dest.port in (80, 443)
    if pattern.scheme == "https" or (pattern.scheme is None and pattern.port is None):
        assert dest.scheme == "https", (pattern_text, url)
    assert dest.url.userinfo == b""


# --------------------------------------------------------------------------- path containment

path_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(
            list("./\\\x00\n\t ~%:abc")
            + [
                "\uff0e",
                "\uff0f",
                "\u2025",
                "\u2024",
                "\u202e",
                "\u200d",
                "\ufe52",
                "\u3002",
                "\u0338",
                "\ud800",
            ]
        ),
        st.characters(),
    ),
    max_size=40,
)


@FAST
@given(path_text)
@example("..")
@example("\uff0e\uff0e/x")
@example("a/\u2025/b")
def test_accepted_paths_are_canonical_and_stay_inside_any_root(path: str) -> None:
    try:
        normal = normalise_path(path)
    except WorkspacePathError:
        return
    assert normal.startswith("/") and normal == posixpath.normpath(normal)
    segments = normal.split("/")[1:]
    assert all(s and s not in (".", "..") and s.strip(" .") for s in segments)
    assert "\\" not in normal and "\x00" not in normal
    assert normalise_path(normal) == normal  # idempotent
    root = "/srv/workspaces/w1"
    joined = os.path.normpath(os.path.join(root, normal.lstrip("/")))
    assert joined == root or joined.startswith(root + "/")
    assert len(normal) <= 1024


# --------------------------------------------------------------------------- redaction

secret_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), min_codepoint=33), min_size=6, max_size=40
).filter(lambda s: REDACTED not in s)
filler = st.text(max_size=50)


def _forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]


@FAST
@given(secret_text, filler, filler, st.integers(0, 5), st.data())
def test_a_secret_never_survives_scrubbing(
    secret: str, before: str, after: str, form_index: int, data: st.DataObject
) -> None:
    form = _forms(secret)[form_index]
    assume(len(form) >= 6)
    text = f"{before}{form}{after}"
    redactor = Redactor([secret])
    scrubbed = redactor.scrub_text(text)
    for leaked in _forms(secret):
        if len(leaked) >= 6:
            assert leaked not in scrubbed, (secret, text, scrubbed)
    nested = redactor.scrub({"k": [text, {form: text}], form: (text,)})
    assert all(
        f not in json.dumps(nested, ensure_ascii=False) for f in _forms(secret) if len(f) >= 6
    )


@FAST
@given(secret_text, filler, filler)
def test_a_secret_never_survives_json_or_repr_escaping(
    secret: str, before: str, after: str
) -> None:
    """A block that hands over a body as text (a JSON echo, say) carries the secret JSON-escaped."""
    redactor = Redactor([secret])
    for text in (
        before + json.dumps({"echo": secret}) + after,
        before + json.dumps({"echo": secret}, ensure_ascii=False) + after,
        before + repr(ValueError(f"bad value {secret!r}")) + after,
        before + f"failed: {secret!r}" + after,
    ):
        scrubbed = redactor.scrub_text(text)
        for escaped in (
            json.dumps(secret)[1:-1],
            json.dumps(secret, ensure_ascii=False)[1:-1],
            repr(secret)[1:-1],
            secret,
        ):
            if len(escaped) >= 6:
                assert escaped not in scrubbed, (secret, text, scrubbed)


# --------------------------------------------------------------------------- strict JSON


def _no_surrogates(value: Any) -> bool:
    if isinstance(value, str):
        return not any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    if isinstance(value, dict):
        return all(_no_surrogates(k) and _no_surrogates(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_no_surrogates(v) for v in value)
    return True


@FAST
@given(
    st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(str.encode),
        json_value.map(lambda v: json.dumps(v).encode()),
    )
)
def test_strict_json_gives_a_value_or_its_one_error(data: bytes) -> None:
    try:
        value = loads_strict(data)
    except StrictJSONError:
        return
    assert _depth(value) <= MAX_DEPTH and _no_surrogates(value)
    assert json.loads(json.dumps(value, allow_nan=False)) == value or value != value


def test_hostname_normalisation_is_stable() -> None:
    for host in ("Example.COM.", "bücher.example", "xn--bcher-kva.example", "[::1]", "0x7f.1"):
        assert normalise_host(normalise_host(host)) == normalise_host(host)
    assert urlsplit("http://a/").hostname == "a"
