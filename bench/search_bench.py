"""Micro-benchmark for blockpilot.blocks.search.

Usage: python bench/search_bench.py [--queries N] [--seed S]

Builds indexes over 100 / 1,000 / 10,000 synthetic block documents and prints
the build time and p50/p99 query latency for a mix of keyword, multi-word,
synonym, typo and exact-name queries.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from blockpilot.blocks.search import BlockSearchIndex, SearchDocument

DOMAIN_WORDS = (
    "send", "email", "message", "read", "write", "file", "workspace", "list", "http",
    "request", "web", "url", "fetch", "api", "github", "issue", "pull", "repository",
    "comment", "text", "template", "format", "fill", "calculate", "number", "store",
    "value", "constant", "generate", "prompt", "model", "chat", "token", "key", "header",
    "body", "json", "parse", "csv", "table", "row", "column", "filter", "sort", "merge",
    "split", "join", "date", "time", "schedule", "webhook", "slack", "discord", "notion",
    "sheet", "calendar", "event", "image", "audio", "video", "transcribe", "translate",
    "search", "summarize", "extract", "classify", "upload", "download", "compress",
    "encrypt", "decrypt", "hash", "encode",
)  # fmt: skip


def _pseudo_words(rng: random.Random, count: int) -> list[str]:
    letters = "abcdefghiklmnoprstuvw"
    words: set[str] = set()
    while len(words) < count:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(4, 9))))
    return sorted(words)


def make_documents(n: int, rng: random.Random) -> list[SearchDocument]:
    vocabulary = list(DOMAIN_WORDS) + _pseudo_words(rng, 3000)
    # Zipf-ish: earlier words are much more common.
    weights = [1.0 / (rank + 1) for rank in range(len(vocabulary))]
    docs = []
    for i in range(n):

        def words(k: int) -> list[str]:
            return rng.choices(vocabulary, weights=weights, k=k)

        name = "".join(w.capitalize() for w in words(rng.randint(2, 4))) + f"V{i}Block"
        docs.append(
            SearchDocument(
                id=f"block-{i}",
                name=name,
                description=" ".join(words(rng.randint(8, 30))) + ".",
                categories=tuple(words(rng.randint(1, 2))),
                fields=tuple(
                    ("_".join(words(2)), " ".join(words(rng.randint(3, 10))))
                    for _ in range(rng.randint(1, 6))
                ),
            )
        )
    return docs


def make_queries(docs: list[SearchDocument], n: int, rng: random.Random) -> list[str]:
    queries = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            queries.append(rng.choice(DOMAIN_WORDS))
        elif kind == 1:
            queries.append(" ".join(rng.sample(DOMAIN_WORDS, rng.randint(2, 4))))
        elif kind == 2:
            queries.append(rng.choice(["mail", "fetch url", "llm", "arithmetic", "save"]))
        elif kind == 3:
            word = rng.choice([w for w in DOMAIN_WORDS if len(w) > 4])
            j = rng.randrange(len(word) - 1)
            queries.append(word[:j] + word[j + 1] + word[j] + word[j + 2 :])  # transposition
        else:
            queries.append(rng.choice(docs).name)
    return queries


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    print(f"{'docs':>7} {'build s':>9} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for n in (100, 1_000, 10_000):
        rng = random.Random(args.seed)
        docs = make_documents(n, rng)
        started = time.perf_counter()
        index = BlockSearchIndex(docs)
        build = time.perf_counter() - started
        queries = make_queries(docs, args.queries, rng)
        for q in queries[:50]:  # warm the typo cache like a running server would
            index.search(q)
        latencies = []
        for q in queries:
            t0 = time.perf_counter()
            index.search(q, limit=10)
            latencies.append((time.perf_counter() - t0) * 1000.0)
        print(
            f"{n:>7} {build:>9.3f} {percentile(latencies, 0.50):>8.3f} "
            f"{percentile(latencies, 0.99):>8.3f} {statistics.fmean(latencies):>8.3f}"
        )


if __name__ == "__main__":
    main()
