"""The search index rebuilt from a previous one answers exactly as one built from scratch.

A catalogue change (a source added, refreshed or removed) builds the next index from the
previous: the documents it already had are not analysed again (docs/performance.md).
Whatever was reused, every query must rank and score as a fresh build of the same
documents does.
"""

from __future__ import annotations

import random
import uuid

import pytest

from blockpilot.blocks.search import BlockSearchIndex, SearchDocument

WORDS = [
    "send", "email", "invoice", "customer", "create", "list", "update", "delete", "github",
    "issue", "slack", "channel", "message", "calendar", "event", "file", "folder", "upload",
    "download", "report", "summary", "translate", "text", "payment", "refund", "order",
    "product", "ticket", "contact", "lead", "deal", "webhook", "schedule", "archive",
]  # fmt: skip
QUERIES = [
    "send email", "create invoice for customer", "list slack channels", "emial", "refnd",
    "github issue comment", "upload file to folder", "Doc0Block", "doc 17", "mail",
    "fetch url", "summary report", "the", "", "zzzzqqq", "archive old tickets",
]  # fmt: skip


def _doc(i: int, rng: random.Random, tag: str = "") -> SearchDocument:
    words = lambda k: " ".join(rng.choices(WORDS, k=k))  # noqa: E731
    return SearchDocument(
        id=str(uuid.UUID(int=i)),
        name=f"Doc{i}{tag}Block",
        description=words(rng.randint(3, 12)) + ".",
        categories=(rng.choice(("data", "communication", "crm")),),
        fields=tuple((f"f_{w}", words(3)) for w in rng.sample(WORDS, rng.randint(0, 3))),
    )


def _answers(index: BlockSearchIndex) -> list[list[tuple[str, float]]]:
    return [[(h.id, h.score) for h in index.search(q, limit=25)] for q in QUERIES]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_rebuilt_index_answers_as_a_fresh_one(seed: int) -> None:
    rng = random.Random(seed)
    docs = [_doc(i, rng) for i in range(300)]
    first = BlockSearchIndex(docs)
    # A source removed (the first 40), one refreshed (10 changed), one added (50 new).
    changed = [_doc(i, rng, "Changed") for i in range(40, 50)]
    added = [_doc(i, rng) for i in range(1000, 1050)]
    later = docs[50:] + changed + added
    rebuilt = BlockSearchIndex(later, reuse=first)
    assert _answers(rebuilt) == _answers(BlockSearchIndex(later))
    # Twice in a row, and back to nothing and to something again.
    again = BlockSearchIndex(docs, reuse=rebuilt)
    assert _answers(again) == _answers(BlockSearchIndex(docs))
    empty = BlockSearchIndex([], reuse=again)
    assert empty.search("send email") == []
    assert _answers(BlockSearchIndex(docs, reuse=empty)) == _answers(first)


def test_words_only_removed_blocks_had_are_forgotten() -> None:
    rng = random.Random(5)
    docs = [_doc(i, rng) for i in range(20)]
    special = SearchDocument(id=str(uuid.UUID(int=99)), name="QuokkaGroomerBlock",
                             description="Grooms a quokka.")  # fmt: skip
    with_it = BlockSearchIndex([*docs, special])
    assert [h.id for h in with_it.search("quokka")][:1] == [special.id]
    without = BlockSearchIndex(docs, reuse=with_it)
    assert without.search("quokka") == []
    assert without.search("quokkas") == []  # nor a typo of it
    assert len(without) == 20
