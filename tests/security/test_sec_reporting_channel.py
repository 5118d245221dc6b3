"""SECURITY.md tells a finder where to report privately and what to expect (issue 11 #19)."""

from __future__ import annotations

import re
from pathlib import Path

SECURITY_MD = Path(__file__).resolve().parents[2] / "SECURITY.md"


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_security_md_has_a_private_reporting_channel_with_response_times() -> None:
    section = _section(SECURITY_MD.read_text(encoding="utf-8"), "Reporting a vulnerability")
    # GitHub's private vulnerability reporting: the button and where it leads.
    assert "Report a vulnerability" in section
    assert "/security/advisories/new" in section
    assert "do not open a public issue" in section
    # Response times a finder can hold us to.
    assert re.search(r"acknowledgement within \*\*\d+ working days\*\*", section)
    assert re.search(r"within \*\*\d+ days\*\*", section)
    # No invented person's address: every e-mail address is on a reserved example domain
    # and is marked as a placeholder to replace.
    addresses = re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", section)
    assert addresses, "an e-mail channel (placeholder) is given"
    assert all(address.endswith(".example") for address in addresses), addresses
    assert "placeholder" in section and "replace" in section
