"""The GitHub, Google, Notion, Linear, Jira and HubSpot blocks as a catalogue: documented in
docs/provider-blocks.md exactly as declared (the table cannot drift), and every provider they
accept OAuth2 for has known authorize and token endpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blockpilot.blocks.registry import BlockRegistry
from blockpilot.provider_facts import PROVIDERS

DOC = Path(__file__).resolve().parents[3] / "docs" / "provider-blocks.md"
MODULES = ("github", "google", "notion", "linear", "jira", "hubspot")


def provider_blocks() -> list[Any]:
    return [b for b in BlockRegistry().all() if type(b).__module__.rsplit(".", 1)[-1] in MODULES]


def table_rows() -> list[str]:
    """The row each provider block must have in the page's tables."""
    rows = []
    for block in provider_blocks():
        info = block.Input.credentials_fields()["credentials"]
        scopes = ", ".join(f"`{s}`" for s in sorted(info.required_scopes)) or "—"
        rows.append(f"| `{block.name}` | {block.effect.value} | {scopes} |")
    return rows


def test_every_provider_block_is_documented_with_effect_and_scopes() -> None:
    text = DOC.read_text()
    rows = table_rows()
    assert len(rows) == 40
    missing = [row for row in rows if row not in text]
    assert not missing, "update docs/provider-blocks.md:\n" + "\n".join(missing)


def test_every_oauth_provider_has_known_endpoints() -> None:
    for block in provider_blocks():
        info = block.Input.credentials_fields()["credentials"]
        if "oauth2" in info.supported_types:
            for provider in info.provider:
                authorize, token = PROVIDERS[provider].authorize_url, PROVIDERS[provider].token_url
                assert authorize.startswith("https://") and token.startswith("https://")


if __name__ == "__main__":  # print the rows, to paste into the page
    print("\n".join(table_rows()))
