"""Ranked search over block metadata, used by the copilot's ``find_block`` tool.

The index is built once from :class:`SearchDocument` objects and answers queries
with a field-weighted BM25 score:

* **Tokens** are lower-cased (NFKC + casefold), split on anything that is not a
  letter or digit and on CamelCase / letter-digit boundaries.  A split word also
  contributes its joined form (``GitHub`` -> ``git``, ``hub``, ``github``) so that
  ``github`` and ``GitHub`` find each other.  The block name loses a trailing
  ``Block``.
* **Stemming** is deliberately tiny and deterministic (see :func:`stem`).
* **Fields** are scored separately (per-field length normalisation) and combined
  with weights: name > description > categories > field names > field
  descriptions.  Every per-term, per-document contribution is query independent,
  so it is computed at build time and stored in the postings; a query only
  touches the postings of its own terms.
* **Synonyms** from a small domain table expand a query term into a group
  (``mail`` -> ``email``/``smtp``) at a reduced weight.  A query term and its
  synonyms form one clause: the best matching term of the clause counts fully
  and further ones with geometrically decaying weight, so a large group cannot
  swamp literal matches of other query terms.
* **Typos**: a query term that is neither in the vocabulary nor in the synonym
  table is mapped to the closest vocabulary term with rapidfuzz's Jaro-Winkler
  similarity >= 85 % (``emial`` -> ``email``).  Plain Indel ratio is not used
  because it scores a single transposition of a five letter word at only 80 %.
* **Exact names**: a query equal to a block name, ignoring case, punctuation,
  spacing and an optional ``Block`` suffix, always ranks that block first.

Ties are broken by block name (then id), so results are fully deterministic.
"""

from __future__ import annotations

import heapq
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

from blockpilot.errors import InvalidInputError

__all__ = [
    "BlockSearchIndex",
    "SearchDocument",
    "SearchHit",
    "normalize_block_name",
    "stem",
    "tokenize",
]

# --------------------------------------------------------------------------- #
# Tunables
# --------------------------------------------------------------------------- #

K1 = 1.2
B = 0.75

#: Field weights; the name dominates.
NAME_WEIGHT = 4.0
DESCRIPTION_WEIGHT = 1.5
CATEGORY_WEIGHT = 1.2
FIELD_NAME_WEIGHT = 0.8
FIELD_DESCRIPTION_WEIGHT = 0.5

#: Weight of a synonym relative to the query term that triggered it.
SYNONYM_WEIGHT = 0.5
#: Within one clause (a query term plus its synonyms) the best matching term
#: counts fully and the k-th next best with weight ``CLAUSE_DECAY ** k``.
CLAUSE_DECAY = 0.5
#: Weight of a typo-corrected term relative to a literal term.
TYPO_WEIGHT = 0.8
#: Minimum Jaro-Winkler similarity (0-100) for typo correction.
TYPO_CUTOFF = 85.0
#: Query terms shorter than this are never typo-corrected.
TYPO_MIN_LENGTH = 3
#: Only the first N query tokens are used (bounds latency on huge inputs).
MAX_QUERY_TOKENS = 64
#: Score margin by which an exact name match is put above the best other hit.
EXACT_MATCH_MARGIN = 1.0

_TYPO_CACHE_SIZE = 4096
_CLAUSE_CACHE_SIZE = 128

_FIELD_WEIGHTS = (
    NAME_WEIGHT,
    DESCRIPTION_WEIGHT,
    CATEGORY_WEIGHT,
    FIELD_NAME_WEIGHT,
    FIELD_DESCRIPTION_WEIGHT,
)

_STOPWORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "block", "blocks", "by", "for", "from",
        "has", "have", "in", "into", "is", "it", "its", "of", "on", "or", "that", "the",
        "this", "to", "was", "were", "will", "with", "you", "your",
    }
)  # fmt: skip

#: Domain synonym groups.  Every entry of a group expands to every single-word
#: entry of the same group; multi-word entries only act as triggers.
_SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("email", "mail", "smtp", "inbox"),
    ("http", "web", "request", "api", "url", "fetch", "endpoint"),
    ("llm", "ai", "gpt", "model", "chat", "text generation", "generate text"),
    ("github", "issue", "repo", "repository"),
    ("file", "workspace", "write", "read", "save"),
    ("math", "calculate", "calculator", "arithmetic", "compute"),
    ("template", "format", "fill"),
    ("store", "value", "constant"),
)

# --------------------------------------------------------------------------- #
# Text analysis
# --------------------------------------------------------------------------- #

_ASCII_CHUNK_RE = re.compile(r"[A-Za-z0-9]+")
_UNICODE_CHUNK_RE = re.compile(r"[^\W_]+")
_ASCII_PART_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_NON_ALNUM_RE = re.compile(r"[\W_]+")
_VOWELS = frozenset("aeiouy")


def _split_unicode_chunk(chunk: str) -> list[str]:
    """CamelCase/digit split for a chunk that contains non-ASCII characters."""

    def kind(ch: str) -> str:
        if ch.isdigit():
            return "digit"
        if ch.isupper() or ch.islower():
            return "cased"
        return "other"

    parts: list[str] = []
    start = 0
    n = len(chunk)
    for i in range(1, n):
        prev, cur = chunk[i - 1], chunk[i]
        nxt = chunk[i + 1] if i + 1 < n else ""
        if (
            kind(prev) != kind(cur)
            or (prev.islower() and cur.isupper())
            or (prev.isupper() and cur.isupper() and nxt.islower())
        ):
            parts.append(chunk[start:i])
            start = i
    parts.append(chunk[start:])
    return parts


def _split_chunk(chunk: str) -> list[str]:
    if chunk.isascii():
        if chunk.islower() and chunk.isalpha():
            return [chunk]  # fast path for the common case
        return _ASCII_PART_RE.findall(chunk)
    return _split_unicode_chunk(chunk)


def stem(token: str) -> str:
    """Light, deterministic suffix stripping for lower-case ASCII words.

    Plural ``-s``/``-es``/``-ies``, ``-ing`` and ``-ed`` are removed, a doubled
    final consonant left behind by ``-ing``/``-ed`` is undoubled, and a final
    ``-e`` is dropped so that ``create``/``created``/``creating`` all meet at
    ``creat``.  Short words, numbers and non-ASCII words are returned unchanged.
    """
    t = token
    if len(t) <= 3 or not (t.isascii() and t.isalpha()):
        return t
    if t.endswith(("ies", "ied")) and len(t) > 4:
        t = t[:-3] + "y"
    elif t.endswith("s") and not t.endswith("ss"):
        t = t[:-1]
    stripped = False
    if t.endswith("ing") and len(t) >= 6:
        t = t[:-3]
        stripped = True
    elif t.endswith("ed") and len(t) >= 5:
        t = t[:-2]
        stripped = True
    if stripped and len(t) >= 4 and t[-1] == t[-2] and t[-1] not in _VOWELS and t[-1] not in "lsz":
        t = t[:-1]
    if t.endswith("e") and len(t) > 3:
        t = t[:-1]
    return t


def _analyze(text: str, *, drop_block_suffix: bool = False) -> list[str]:
    """Text -> list of stemmed index terms (stop words removed)."""
    if not text:
        return []
    text = unicodedata.normalize("NFKC", text)
    chunk_re = _ASCII_CHUNK_RE if text.isascii() else _UNICODE_CHUNK_RE
    chunks = chunk_re.findall(text)
    if drop_block_suffix and chunks:
        last = _split_chunk(chunks[-1])
        if last and last[-1].casefold() == "block":
            if len(last) > 1:
                chunks[-1] = "".join(last[:-1])
            elif len(chunks) > 1:
                chunks.pop()
    out: list[str] = []
    for chunk in chunks:
        parts = _split_chunk(chunk)
        for part in parts:
            word = part.casefold()
            if word not in _STOPWORDS:
                out.append(stem(word))
        if len(parts) > 1:
            out.append(stem(chunk.casefold()))
    return out


def tokenize(text: str) -> list[str]:
    """The index's analysis chain, exposed for debugging and tests."""
    return _analyze(text)


def normalize_block_name(name: str) -> str:
    """Key used for exact name matching.

    Case-, spacing- and punctuation-insensitive, with an optional trailing
    ``Block`` removed: ``"SendWebRequestBlock"``, ``"send web request"`` and
    ``"send_web_request"`` all normalise to ``"sendwebrequest"``.
    """
    key = _NON_ALNUM_RE.sub("", unicodedata.normalize("NFKC", name).casefold())
    if key.endswith("block") and len(key) > len("block"):
        key = key[: -len("block")]
    return key


_Phrase = tuple[tuple[str, ...], tuple[str, ...]]  # (trigger terms, expansion terms)


def _build_synonyms() -> tuple[dict[str, tuple[str, ...]], list[_Phrase]]:
    singles: dict[str, list[str]] = {}
    phrases: list[_Phrase] = []
    for group in _SYNONYM_GROUPS:
        words: list[str] = []
        for entry in group:
            terms = _analyze(entry)
            if len(terms) == 1 and terms[0] not in words:
                words.append(terms[0])
        for entry in group:
            terms = _analyze(entry)
            if len(terms) > 1:
                phrases.append((tuple(terms), tuple(words)))
        for word in words:
            bucket = singles.setdefault(word, [])
            for other in words:
                if other != word and other not in bucket:
                    bucket.append(other)
    return {k: tuple(v) for k, v in singles.items()}, phrases


_SYNONYMS, _SYNONYM_PHRASES = _build_synonyms()

# --------------------------------------------------------------------------- #
# Public types
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class SearchDocument:
    """Searchable metadata of one block.

    ``fields`` holds ``(field name, field description)`` pairs of the block's
    inputs and outputs.
    """

    id: str
    name: str
    description: str
    categories: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result; higher ``score`` is better."""

    id: str
    score: float


_Clause = dict[str, float]


class BlockSearchIndex:
    """Immutable inverted index over :class:`SearchDocument` objects.

    Build once (``BlockSearchIndex(docs)``) and query many times with
    :meth:`search` and :meth:`exact_name_lookup`.  Instances are safe to share
    between threads for reading (the only mutable state is a pair of lookup
    caches whose updates are idempotent).
    """

    __slots__ = (
        "_ids",
        "_rank",
        "_postings",
        "_vocabulary",
        "_names",
        "_typo_cache",
        "_clause_cache",
    )

    def __init__(self, documents: Iterable[SearchDocument]) -> None:
        docs = list(documents)
        ids: list[str] = []
        seen: set[str] = set()
        for doc in docs:
            if not isinstance(doc, SearchDocument):
                raise InvalidInputError(
                    f"BlockSearchIndex expects SearchDocument objects, got {type(doc).__name__}."
                )
            if doc.id in seen:
                raise InvalidInputError(
                    f"Duplicate block id {doc.id!r} in search documents; ids must be unique.",
                    details={"id": doc.id},
                )
            seen.add(doc.id)
            ids.append(doc.id)
        self._ids: tuple[str, ...] = tuple(ids)

        order = sorted(
            range(len(docs)), key=lambda i: (docs[i].name.casefold(), docs[i].name, docs[i].id)
        )
        rank = [0] * len(docs)
        for position, index in enumerate(order):
            rank[index] = position
        self._rank: tuple[int, ...] = tuple(rank)

        # Exact-name table: first document in name order wins a shared key.
        names: dict[str, int] = {}
        for index in order:
            key = normalize_block_name(docs[index].name)
            if key and key not in names:
                names[key] = index
        self._names = names

        self._postings = self._build_postings(docs)
        self._vocabulary: list[str] = sorted(self._postings)
        self._typo_cache: dict[str, str | None] = {}
        self._clause_cache: dict[tuple[tuple[str, float], ...], dict[int, float]] = {}

    # -- building --------------------------------------------------------- #

    @staticmethod
    def _build_postings(docs: list[SearchDocument]) -> dict[str, dict[int, float]]:
        n_fields = len(_FIELD_WEIGHTS)
        # per field: list of (doc index, term counts, field length)
        field_stats: list[list[tuple[int, Counter[str], int]]] = [[] for _ in range(n_fields)]
        total_lengths = [0] * n_fields
        document_frequency: Counter[str] = Counter()

        for index, doc in enumerate(docs):
            texts: tuple[list[str], ...] = (
                _analyze(doc.name, drop_block_suffix=True),
                _analyze(doc.description),
                [t for category in doc.categories for t in _analyze(category)],
                [t for field_name, _ in doc.fields for t in _analyze(field_name)],
                [t for _, field_description in doc.fields for t in _analyze(field_description)],
            )
            doc_terms: set[str] = set()
            for f, terms in enumerate(texts):
                if not terms:
                    continue
                counts = Counter(terms)
                field_stats[f].append((index, counts, len(terms)))
                total_lengths[f] += len(terms)
                doc_terms.update(counts)
            document_frequency.update(doc_terms)

        n_docs = len(docs)
        idf = {
            term: math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
            for term, df in document_frequency.items()
        }
        postings: dict[str, dict[int, float]] = {}
        for f, stats in enumerate(field_stats):
            if not stats:
                continue
            weight = _FIELD_WEIGHTS[f]
            average = total_lengths[f] / n_docs or 1.0
            for index, counts, length in stats:
                norm = K1 * (1.0 - B + B * length / average)
                for term, tf in counts.items():
                    contribution = weight * idf[term] * tf * (K1 + 1.0) / (tf + norm)
                    bucket = postings.get(term)
                    if bucket is None:
                        postings[term] = {index: contribution}
                    else:
                        bucket[index] = bucket.get(index, 0.0) + contribution
        return postings

    # -- querying --------------------------------------------------------- #

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"BlockSearchIndex(documents={len(self._ids)}, terms={len(self._vocabulary)})"

    def exact_name_lookup(self, query: str) -> str | None:
        """Id of the block whose name equals ``query`` up to case, punctuation,
        spacing and an optional ``Block`` suffix; ``None`` when there is none."""
        if not isinstance(query, str):
            return None
        key = normalize_block_name(query)
        index = self._names.get(key) if key else None
        return None if index is None else self._ids[index]

    def search(self, query: str, limit: int = 10) -> list[SearchHit]:
        """Best ``limit`` blocks for ``query``, best first.

        Returns ``[]`` for an empty or meaningless query.  Raises
        :class:`~blockpilot.errors.InvalidInputError` for a negative ``limit``.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidInputError(
                f"limit must be a non-negative integer, got {limit!r}.", details={"limit": limit}
            )
        if limit == 0 or not isinstance(query, str) or not query.strip() or not self._ids:
            return []

        exact_key = normalize_block_name(query)
        exact = self._names.get(exact_key) if exact_key else None

        totals: dict[int, float] = {}
        for clause in self._clauses(query):
            postings = self._clause_postings(clause)
            if not totals:
                totals = dict(postings)
                continue
            get = totals.get
            for index, score in postings.items():
                totals[index] = get(index, 0.0) + score

        hits: list[SearchHit] = []
        if exact is not None:
            totals.pop(exact, None)
            best = max(totals.values(), default=0.0)
            hits.append(SearchHit(self._ids[exact], round(best + EXACT_MATCH_MARGIN, 6)))
            limit -= 1
        if limit > 0 and totals:
            hits.extend(
                SearchHit(self._ids[index], round(score, 6))
                for index, score in self._top(totals, limit)
            )
        return hits

    def _top(self, totals: dict[int, float], limit: int) -> list[tuple[int, float]]:
        """The ``limit`` best (index, score) pairs; scores equal to 1e-9 are
        ordered by block name."""
        rank = self._rank
        if len(totals) > limit:
            # Cheap pre-selection on raw scores, keeping every near-tie of the
            # cut-off so the exact (rounded score, name) order below is intact.
            cutoff = heapq.nlargest(limit, totals.values())[-1] - 1e-8
            candidates = [item for item in totals.items() if item[1] >= cutoff]
        else:
            candidates = list(totals.items())
        candidates.sort(key=lambda item: (-round(item[1], 9), rank[item[0]]))
        return candidates[:limit]

    def _clause_postings(self, clause: _Clause) -> dict[int, float]:
        """Per-document score of one clause (a weighted term plus synonyms).

        The best matching term of the clause counts fully, the k-th next best
        with weight ``CLAUSE_DECAY ** k`` (so a clause is worth at most twice
        its best term).  Multi-term clauses come from a small, fixed synonym
        table, so their merged postings are cached.
        """
        postings = self._postings
        if len(clause) == 1:
            ((term, weight),) = clause.items()
            single = postings[term]
            if weight == 1.0:
                return single
            return {index: weight * score for index, score in single.items()}
        key = tuple(clause.items())
        cache = self._clause_cache
        cached = cache.get(key)
        if cached is not None:
            return cached
        matches: dict[int, list[float]] = {}
        for term, weight in clause.items():
            for index, score in postings[term].items():
                bucket = matches.get(index)
                if bucket is None:
                    matches[index] = [weight * score]
                else:
                    bucket.append(weight * score)
        merged: dict[int, float] = {}
        for index, values in matches.items():
            if len(values) == 1:
                merged[index] = values[0]
                continue
            values.sort(reverse=True)
            value = 0.0
            factor = 1.0
            for v in values:
                value += factor * v
                factor *= CLAUSE_DECAY
            merged[index] = value
        if len(cache) >= _CLAUSE_CACHE_SIZE:
            cache.clear()
        cache[key] = merged
        return merged

    def _clauses(self, query: str) -> list[_Clause]:
        """Turn a query into clauses (term -> weight maps); clause scores add up."""
        terms = _analyze(query)[:MAX_QUERY_TOKENS]
        postings = self._postings
        clauses: list[_Clause] = []
        seen: set[str] = set()
        for term in terms:
            if term in seen:
                continue
            seen.add(term)
            clause: _Clause = {}
            base, base_weight = term, 1.0
            if term in postings:
                clause[term] = 1.0
            elif term not in _SYNONYMS:
                corrected = self._correct_typo(term)
                if corrected is None:
                    continue
                base, base_weight = corrected, TYPO_WEIGHT
                clause[corrected] = TYPO_WEIGHT
            for synonym in _SYNONYMS.get(base, ()):
                if synonym in postings and synonym not in clause:
                    clause[synonym] = base_weight * SYNONYM_WEIGHT
            if clause:
                clauses.append(clause)

        for phrase, group in _SYNONYM_PHRASES:
            if _contains_run(terms, phrase):
                clause = {w: SYNONYM_WEIGHT for w in group if w in postings and w not in seen}
                if clause:
                    clauses.append(clause)
        return clauses

    def _correct_typo(self, term: str) -> str | None:
        if len(term) < TYPO_MIN_LENGTH or not term.isalpha() or not self._vocabulary:
            return None
        cache = self._typo_cache
        if term in cache:
            return cache[term]
        match = process.extractOne(
            term,
            self._vocabulary,
            scorer=JaroWinkler.normalized_similarity,
            score_cutoff=TYPO_CUTOFF / 100.0,
        )
        corrected = None if match is None else str(match[0])
        if len(cache) >= _TYPO_CACHE_SIZE:
            cache.clear()
        cache[term] = corrected
        return corrected


def _contains_run(terms: list[str], phrase: tuple[str, ...]) -> bool:
    width = len(phrase)
    return any(tuple(terms[i : i + width]) == phrase for i in range(len(terms) - width + 1))
