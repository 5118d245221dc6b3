"""Host patterns of host-scoped credentials and URL matching.

See docs/architecture.md#credential-resolution.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from blockpilot.credentials.hosts import HostPattern
from blockpilot.credentials.models import HostScopedCredentials
from blockpilot.errors import InvalidInputError


@pytest.mark.parametrize(
    ("text", "host", "port", "scheme"),
    [
        ("api.example.com", "api.example.com", None, None),
        ("  API.Example.COM.  ", "api.example.com", None, None),
        ("api.example.com:8443", "api.example.com", 8443, None),
        ("*.example.com", "*.example.com", None, None),
        ("*.Example.com:8080", "*.example.com", 8080, None),
        ("https://api.example.com", "api.example.com", None, "https"),
        ("HTTPS://api.example.com:444/", "api.example.com", 444, "https"),
        ("http://localhost:8000", "localhost", 8000, "http"),
        ("[::1]:8080", "::1", 8080, None),
        ("127.0.0.1", "127.0.0.1", None, None),
        ("bücher.example", "xn--bcher-kva.example", None, None),
    ],
)
def test_parse(text: str, host: str, port: int | None, scheme: str | None) -> None:
    pattern = HostPattern.parse(text)
    assert (pattern.host, pattern.port, pattern.scheme) == (host, port, scheme)
    # The string form parses back to the same pattern.
    assert HostPattern.parse(str(pattern)) == pattern


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "*",
        "*.",
        "api.*.com",
        "*.*.example.com",
        "ex*ample.com",
        "api.example.com/path",
        "user@api.example.com",
        "api example.com",
        "ftp://api.example.com",
        "api.example.com:99999",
        "api.example.com:port",
        "a..example.com",
        "exa$mple.com",
        # Regression: unbalanced brackets raised a bare ValueError, port 0 was accepted.
        "[::1",
        "[",
        "api.example.com]:80",
        "api.example.com:0",
    ],
)
def test_parse_rejects_bad_patterns(text: str) -> None:
    with pytest.raises(InvalidInputError):
        HostPattern.parse(text)


@pytest.mark.parametrize("text", ["*.com", "*.localhost", "https://*.org"])
def test_wildcard_over_a_whole_top_level_domain_is_rejected(text: str) -> None:
    # Regression: "*.com" parsed and would have sent the headers to every .com host.
    with pytest.raises(InvalidInputError, match="wildcard"):
        HostPattern.parse(text)


def test_the_credential_model_validates_its_host() -> None:
    creds = HostScopedCredentials(
        provider="http", host="API.example.com:8443", headers={"X-Key": "v" * 10}
    )
    assert creds.host == "api.example.com:8443"
    assert creds.matches_url("https://api.example.com:8443/x")
    # Regression: a bad host raised a bare InvalidInputError out of pydantic validation
    # instead of a ValidationError naming the field.
    with pytest.raises(ValidationError) as info:
        HostScopedCredentials(
            provider="http", host="api.example.com/path", headers={"X-Key": "v" * 10}
        )
    assert info.value.errors()[0]["loc"] == ("host",)
    with pytest.raises(ValueError):
        HostScopedCredentials(
            provider="http", host="api.example.com", headers={"Bad Header": "v" * 10}
        )


MATCHES = [
    # exact host, any path/query, case-insensitive, trailing dot
    ("api.example.com", "https://api.example.com"),
    ("api.example.com", "https://api.example.com/v1/items?q=1#frag"),
    ("api.example.com", "https://API.EXAMPLE.COM/"),
    ("api.example.com", "https://api.example.com./"),
    # wildcard: subdomains at any depth and the bare domain
    ("*.example.com", "https://api.example.com/"),
    ("*.example.com", "https://a.b.c.example.com/"),
    ("*.example.com", "https://example.com/"),
    # no port in the pattern: default ports or none
    ("api.example.com", "https://api.example.com:443/"),
    # a port in the pattern must equal the URL's (explicit or default) port
    ("api.example.com:8443", "https://api.example.com:8443/"),
    ("api.example.com:443", "https://api.example.com/"),
    ("api.example.com:80", "http://api.example.com/"),
    ("*.example.com:8443", "https://x.example.com:8443/"),
    # scheme: an https pattern (and a bare host) takes https; an http pattern accepts both
    ("https://api.example.com", "https://api.example.com/"),
    ("http://api.example.com", "https://api.example.com/"),
    ("http://api.example.com", "http://api.example.com/"),
    # IDNA: Unicode and punycode forms are the same host
    ("bücher.example", "https://xn--bcher-kva.example/"),
    ("xn--bcher-kva.example", "https://bücher.example/"),
    # IP literals
    ("127.0.0.1:8080", "http://127.0.0.1:8080/"),
    ("[::1]:8080", "http://[::1]:8080/"),
]

NON_MATCHES = [
    # other hosts and look-alikes
    ("api.example.com", "https://other.example.com/"),
    ("api.example.com", "https://example.com/"),
    ("example.com", "https://api.example.com/"),  # exact means exact
    ("example.com", "https://example.com.evil.com/"),
    ("example.com", "https://evil.com/example.com"),
    ("example.com", "https://evil.com/?u=https://example.com"),
    ("example.com", "https://example.com@evil.com/"),
    ("example.com", "https://evil.com#@example.com"),
    ("example.com", "https://example.co/"),
    ("*.example.com", "https://evilexample.com/"),
    ("*.example.com", "https://example.com.evil.com/"),
    ("*.example.com", "https://xexample.com/"),
    ("*.example.com", "https://example.org/"),
    # homographs (Cyrillic 'а', 'е') are other hosts
    ("example.com", "https://exаmple.com/"),
    ("*.example.com", "https://api.еxample.com/"),
    # ports
    ("api.example.com", "https://api.example.com:8443/"),
    ("api.example.com", "http://api.example.com:8080/"),
    ("api.example.com:8443", "https://api.example.com/"),
    ("api.example.com:8443", "https://api.example.com:9443/"),
    ("api.example.com:443", "http://api.example.com/"),
    # scheme downgrade (a bare host is its https site; see test_sec_credential_scope)
    ("https://api.example.com", "http://api.example.com/"),
    ("api.example.com", "http://API.EXAMPLE.COM/"),
    ("api.example.com", "http://api.example.com:80/"),
    ("https://api.example.com", "http://api.example.com:443/"),
    # credentials in the URL, other schemes, garbage
    ("api.example.com", "https://user@api.example.com/"),
    ("api.example.com", "https://user:pw@api.example.com/"),
    ("api.example.com", "ftp://api.example.com/"),
    ("api.example.com", "file://api.example.com/etc/passwd"),
    ("api.example.com", "//api.example.com/"),
    ("api.example.com", "api.example.com"),
    ("api.example.com", ""),
    ("api.example.com", "https://"),
    ("api.example.com", "https://api.example.com:99999/"),
    ("api.example.com", "https://api.example.com:abc/"),
    ("127.0.0.1", "http://127.0.0.2/"),
    # Regression: hosts that are no valid host name but end in the domain matched a wildcard
    # (a WHATWG-style parser reads "evil.com\.api.example.com" as host evil.com).
    ("*.example.com", "https://evil.com\\.api.example.com/"),
    ("*.example.com", "https://evil.com%2f.api.example.com/"),
    ("*.example.com", "https://evil.com;.api.example.com/"),
    ("*.example.com", "https://evil.com%00.api.example.com/"),
    ("*.example.com", "https://evil.com#.api.example.com"),
    ("*.example.com", "https://evil.com?.api.example.com"),
]


@pytest.mark.parametrize(("pattern", "url"), MATCHES)
def test_matches(pattern: str, url: str) -> None:
    assert HostPattern.parse(pattern).matches_url(url)


@pytest.mark.parametrize(("pattern", "url"), NON_MATCHES)
def test_does_not_match(pattern: str, url: str) -> None:
    assert not HostPattern.parse(pattern).matches_url(url)


async def test_adding_a_credential_with_a_bad_host_names_the_field(pilot, alice) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError, match="host"):
        await pilot.add_credentials(
            alice.id,
            {
                "provider": "http",
                "type": "host_scoped",
                "host": "*.com",
                "headers": {"X-Key": "v" * 10},
            },
        )
    assert await pilot.credential_store.list_meta(alice.id) == []
