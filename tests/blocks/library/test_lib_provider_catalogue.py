"""docs/provider-blocks.md lists every GitHub, Google, Notion, Linear, Jira and HubSpot block
with its effect and scopes exactly as the code declares them (the table cannot drift)."""

from __future__ import annotations

from pathlib import Path

from blockpilot.blocks.registry import BlockRegistry

DOC = Path(__file__).resolve().parents[3] / "docs" / "provider-blocks.md"
MODULES = ("github", "google", "notion", "linear", "jira", "hubspot")


def table_rows() -> list[str]:
    """The row each provider block must have in the page's tables."""
    rows = []
    for block in BlockRegistry().all():
        if type(block).__module__.rsplit(".", 1)[-1] not in MODULES:
            continue
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


if __name__ == "__main__":  # print the rows, to paste into the page
    print("\n".join(table_rows()))
