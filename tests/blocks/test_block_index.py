"""docs/block-index.md is generated from the registry: every built-in block with the accounts
it uses and its effect, so the table cannot drift from the code.

Regenerate it with ``python -m tests.blocks.test_block_index``.
"""

from __future__ import annotations

from pathlib import Path

from blockpilot.blocks.registry import BlockRegistry
from blockpilot.catalog import Catalog, CopilotExclusions
from blockpilot.settings import DEFAULT_EXCLUDED_BLOCK_IDS, DEFAULT_EXCLUDED_BLOCK_TYPES

INDEX = Path(__file__).resolve().parents[2] / "docs" / "block-index.md"

HEADER = """# Every built-in block

Generated from the registry by `python -m tests.blocks.test_block_index` (a test checks it is
current). *Account* is the credential provider a block needs (— for none; several mean any of
them); *effect* decides whether a person is asked first ([Approvals](approvals.md)). Details
of each group: [Built-in blocks](blocks.md), [Provider blocks](provider-blocks.md),
[Communication, web, data, LLM and SQL blocks](blocks-catalogue.md).

"""


def render_index() -> str:
    registry = BlockRegistry()
    catalog = Catalog(
        registry,
        CopilotExclusions.from_names(DEFAULT_EXCLUDED_BLOCK_TYPES, DEFAULT_EXCLUDED_BLOCK_IDS),
    )
    rows = []
    for block in registry.all():
        if not catalog.usable(block):
            continue  # graph-only blocks cannot be run by a copilot
        providers = sorted(
            {p for field in block.Input.credentials_fields().values() for p in field.provider}
        )
        account = ", ".join(f"`{p}`" for p in providers) or "—"
        rows.append((providers[0] if providers else "", block.name, account, block.effect.value))
    rows.sort()
    lines = [
        f"{len(rows)} blocks a copilot can run.",
        "",
        "| block | account | effect |",
        "|---|---|---|",
        *(f"| `{name}` | {account} | {effect} |" for _, name, account, effect in rows),
    ]
    return HEADER + "\n".join(lines) + "\n"


def test_block_index_is_current() -> None:
    expected = render_index()
    assert INDEX.read_text() == expected, (
        "docs/block-index.md is out of date: run python -m tests.blocks.test_block_index"
    )


def test_the_catalogue_has_at_least_seventy_runnable_blocks() -> None:
    rows = [line for line in render_index().splitlines() if line.startswith("| `")]
    assert len(rows) >= 70


if __name__ == "__main__":
    INDEX.write_text(render_index())
