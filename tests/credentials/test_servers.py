"""ServerAddress: the server an SMTP credential is bound to (docs/security.md)."""

from __future__ import annotations

import pytest

from blockpilot.credentials.servers import ServerAddress, needs_server
from blockpilot.errors import InvalidInputError
from blockpilot.net._logs import without_query_strings


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("smtp.example.com", "smtp.example.com", None),
        ("SMTP.Example.COM.", "smtp.example.com", None),
        ("smtp.example.com:465", "smtp.example.com", 465),
        ("[2001:db8::1]:587", "2001:db8::1", 587),
        ("2001:db8::1", "2001:db8::1", None),
        ("bücher.example", "xn--bcher-kva.example", None),
    ],
)
def test_parses_host_and_port(text: str, host: str, port: int | None) -> None:
    assert ServerAddress.parse(text) == ServerAddress(host, port)


@pytest.mark.parametrize(
    "text",
    ["", "  ", "smtp://x.com", "*.example.com", "x.com/p", "u@x.com", "a b", "x.com:0",
     "x.com:99999", "x.com:port", "[::1"],
)  # fmt: skip
def test_bad_servers_are_typed_errors(text: str) -> None:
    with pytest.raises(InvalidInputError):
        ServerAddress.parse(text)


def test_a_binding_admits_its_own_server_only() -> None:
    any_port = ServerAddress.parse("smtp.example.com")
    one_port = ServerAddress.parse("smtp.example.com:587")
    assert any_port.admits(ServerAddress.parse("smtp.example.com:2525"))
    assert one_port.admits(ServerAddress.parse("smtp.example.com:587"))
    assert one_port.admits(ServerAddress.parse("SMTP.example.com"))
    assert not one_port.admits(ServerAddress.parse("smtp.example.com:465"))
    assert not any_port.admits(ServerAddress.parse("smtp.example.com.evil.com"))
    assert not any_port.admits(ServerAddress.parse("mail.example.com"))


def test_only_smtp_username_password_credentials_need_a_server() -> None:
    assert needs_server("smtp", "user_password", None)
    assert not needs_server("smtp", "user_password", "smtp.example.com")
    assert not needs_server("http", "user_password", None)


def test_query_strings_leave_logged_urls() -> None:
    line = 'HTTP Request: GET https://h.example/f?sig=abc&token=def "HTTP/1.1 200 OK"'
    assert without_query_strings(line) == (
        'HTTP Request: GET https://h.example/f?[query removed] "HTTP/1.1 200 OK"'
    )
    assert without_query_strings("no url here?") == "no url here?"
