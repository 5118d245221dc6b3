"""The fast pre-check in front of the secret patterns never skips text a pattern matches."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from blockpilot.redaction import _ANY_PATTERN, REDACTED, Redactor, may_match_a_pattern

# Pieces of every pattern, including characters re's IGNORECASE equates with ASCII letters
# (KELVIN SIGN, LONG S, dotted and dotless I).
_PIECES = st.sampled_from(
    [
        "Bearer ", "BASIC ", "bas\u0130c ", "bas\u0131c ", "to\u212aen ", "api_key=", "Api-Key: ",
        "pa\u017fsword=", "client_secret=", "id-token=", "X-API-KEY=", "https://u:", "@",
        "sk-", "pk-", "rk-", "ghp_", "github_pat_", "xoxb-", "AKIA", "ABCDEFGHIJKLMNOP",
        "abcdefghijklmnop1234", "\"", "'", " ", "=", ":",
    ]
)  # fmt: skip
_TEXT = st.lists(st.one_of(_PIECES, st.text(max_size=12)), max_size=12).map("".join)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None)
@given(_TEXT)
@example("bas\u0130c abcdefgh12345")
@example("bas\u0131c abcdefgh12345")
@example("to\u212aen abcdefgh12345")
@example("pa\u017fsword=hunter22")
def test_the_pre_check_says_yes_whenever_a_pattern_matches(text: str) -> None:
    if _ANY_PATTERN.search(text) is not None:
        assert may_match_a_pattern(text)


def test_plain_log_fields_skip_the_patterns_and_secrets_are_still_found() -> None:
    assert not may_match_a_pattern("/api/v1/tools/run_block")
    assert not may_match_a_pattern("0123456789abcdef0123456789abcdef")
    scrubbed = Redactor().scrub_text("POST /x?api_key=abcdef123456 Bearer abcdefgh12345678")
    assert "abcdef123456" not in scrubbed and "abcdefgh12345678" not in scrubbed
    assert REDACTED in scrubbed
