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

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

from blockpilot.errors import InvalidInputError

__all__ = [
    "BlockSearchIndex",
    "IndexBuildCancelled",
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
    cache = _CHUNK_TERMS
    for chunk in chunks:
        terms = cache.get(chunk)
        if terms is None:
            terms = _chunk_terms(chunk)
            if len(cache) >= _CHUNK_CACHE_SIZE:
                cache.clear()
            cache[chunk] = terms
        out += terms
    return out


#: Terms of a chunk of text: a catalogue's vocabulary is small next to its text, so
#: building an index of 100,000 blocks mostly finds its words here.
_CHUNK_TERMS: dict[str, tuple[str, ...]] = {}
_CHUNK_CACHE_SIZE = 200_000


def _chunk_terms(chunk: str) -> tuple[str, ...]:
    parts = _split_chunk(chunk)
    terms = [stem(word) for word in (part.casefold() for part in parts) if word not in _STOPWORDS]
    if len(parts) > 1:
        terms.append(stem(chunk.casefold()))
    return tuple(terms)


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


class IndexBuildCancelled(Exception):  # noqa: N818 - a signal, not an error anyone sees
    """An index build was told to stop (its process is closing); nothing was built."""


#: A build asks its ``should_stop`` after this many documents.
_STOP_CHECK_EVERY = 1024


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result; higher ``score`` is better."""

    id: str
    score: float


_Clause = dict[str, float]
_Ints = npt.NDArray[np.int64] | npt.NDArray[np.int32]
_Floats = npt.NDArray[np.float64]


_Analysed = tuple[tuple[Counter[str], int], ...]  # per field: (term counts, field length)


def _analyze_document(doc: SearchDocument, memo: dict[str, list[str]]) -> _Analysed:
    """Term counts and length of each field; *memo* holds the terms of texts seen before
    (field names and descriptions repeat across a catalogue)."""

    def terms_of(text: str) -> list[str]:
        terms = memo.get(text)
        if terms is None:
            terms = memo[text] = _analyze(text)
        return terms

    texts: tuple[list[str], ...] = (
        _analyze(doc.name, drop_block_suffix=True),
        _analyze(doc.description),
        [t for category in doc.categories for t in terms_of(category)],
        [t for field_name, _ in doc.fields for t in terms_of(field_name)],
        [t for _, field_description in doc.fields for t in terms_of(field_description)],
    )
    return tuple((Counter(terms), len(terms)) for terms in texts)


class BlockSearchIndex:
    """Immutable inverted index over :class:`SearchDocument` objects.

    Build once (``BlockSearchIndex(docs)``) and query many times with
    :meth:`search` and :meth:`exact_name_lookup`.  Instances are safe to share
    between threads for reading (the only mutable state is a pair of lookup
    caches whose updates are idempotent).

    Postings are numpy arrays (document numbers and precomputed scores per term,
    one contiguous slice each), so a query over 100,000 documents adds up a few
    slices into one score array instead of merging Python dicts.  Passing the
    index of an earlier catalogue as ``reuse`` analyses only the documents that
    are new or changed; the scores of all are recomputed (their IDF and length
    norms depend on the whole catalogue) in a few vector operations.
    """

    __slots__ = (
        "_docs",
        "_ids",
        "_rank",
        "_names",
        "_terms",
        "_term_ids",
        "_vocabulary",
        "_rows",
        "_lengths",
        "_indptr",
        "_post_docs",
        "_post_scores",
        "_typo_cache",
        "_clause_cache",
    )

    def __init__(
        self,
        documents: Iterable[SearchDocument],
        *,
        reuse: BlockSearchIndex | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
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
        self._docs: tuple[SearchDocument, ...] = tuple(docs)
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

        self._build(docs, reuse, should_stop)
        self._typo_cache: dict[str, str | None] = {}
        self._clause_cache: dict[tuple[tuple[str, float], ...], tuple[_Ints, _Floats]] = {}

    # -- building --------------------------------------------------------- #

    def _build(
        self,
        docs: list[SearchDocument],
        reuse: BlockSearchIndex | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        """Term rows (term, document, field, term frequency) and field lengths, then scores.

        Rows of documents equal to one of *reuse* are taken from it (renumbered) instead
        of analysing their text again. Raises :class:`IndexBuildCancelled` when
        *should_stop* says so (asked every ``_STOP_CHECK_EVERY`` documents analysed).
        """
        n_docs = len(docs)
        terms: list[str] = list(reuse._terms) if reuse is not None else []
        term_ids: dict[str, int] = {t: i for i, t in enumerate(terms)}
        lengths = np.zeros((n_docs, len(_FIELD_WEIGHTS)), dtype=np.int64)
        parts, fresh = _reused_rows(docs, reuse, lengths)
        analysed = _analysed_rows(docs, fresh, lengths, terms, term_ids, should_stop)
        if analysed is not None:
            parts.append(analysed)
        rows = np.concatenate(parts, dtype=np.int64) if parts else np.zeros((0, 4), dtype=np.int64)
        terms = _drop_unused_terms(rows, terms)
        # Sorted by (term, document, field): each term's postings are one slice, and a
        # document's fields add up in field order, as they always have.
        rows = rows[np.lexsort((rows[:, 2], rows[:, 1], rows[:, 0]))]
        self._rows: _Ints = rows
        self._lengths: _Ints = lengths
        self._terms: tuple[str, ...] = tuple(terms)
        self._term_ids: dict[str, int] = {t: i for i, t in enumerate(terms)}
        self._vocabulary: list[str] = sorted(terms)
        self._score(rows, lengths, len(terms), n_docs)

    def _score(self, rows: _Ints, lengths: _Ints, n_terms: int, n_docs: int) -> None:
        """Field-weighted BM25 contribution of every (term, document) pair."""
        term, doc, field, tf = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3].astype(np.float64)
        pair_start = np.ones(len(rows), dtype=bool)
        if len(rows):
            pair_start[1:] = (term[1:] != term[:-1]) | (doc[1:] != doc[:-1])
        document_frequency = np.bincount(term[pair_start], minlength=n_terms)
        idf = np.log(1.0 + (n_docs - document_frequency + 0.5) / (document_frequency + 0.5))
        average = lengths.sum(axis=0) / max(n_docs, 1)
        average[average == 0] = 1.0
        weights = np.asarray(_FIELD_WEIGHTS)
        norm = K1 * (1.0 - B + B * lengths[doc, field] / average[field])
        contribution = weights[field] * idf[term] * tf * (K1 + 1.0) / (tf + norm)
        starts = np.flatnonzero(pair_start)
        self._post_scores: _Floats = (
            np.add.reduceat(contribution, starts) if len(starts) else np.zeros(0)
        )
        self._post_docs: _Ints = doc[starts].astype(np.int32)
        indptr = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(document_frequency, out=indptr[1:])
        self._indptr: _Ints = indptr

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

        totals = np.zeros(len(self._ids))
        for clause in self._clauses(query):
            docs, scores = self._clause_postings(clause)
            totals[docs] += scores  # a clause names each document once

        hits: list[SearchHit] = []
        if exact is not None:
            totals[exact] = 0.0
            best = float(totals.max())
            hits.append(SearchHit(self._ids[exact], round(best + EXACT_MATCH_MARGIN, 6)))
            limit -= 1
        if limit > 0:
            hits.extend(
                SearchHit(self._ids[index], round(score, 6))
                for index, score in self._top(totals, limit)
            )
        return hits

    def _top(self, totals: _Floats, limit: int) -> list[tuple[int, float]]:
        """The ``limit`` best (index, score) pairs of the matched documents; scores equal
        to 1e-9 are ordered by block name."""
        matched = np.flatnonzero(totals)  # every contribution is positive
        scores = totals[matched]
        if len(matched) > limit:
            # Cheap pre-selection on raw scores, keeping every near-tie of the
            # cut-off so the exact (rounded score, name) order below is intact.
            cutoff = np.partition(scores, len(scores) - limit)[len(scores) - limit] - 1e-8
            keep = scores >= cutoff
            matched, scores = matched[keep], scores[keep]
        rank = self._rank
        candidates = list(zip(matched.tolist(), scores.tolist(), strict=True))
        candidates.sort(key=lambda item: (-round(item[1], 9), rank[item[0]]))
        return candidates[:limit]

    def _clause_postings(self, clause: _Clause) -> tuple[_Ints, _Floats]:
        """Per-document score of one clause (a weighted term plus synonyms).

        The best matching term of the clause counts fully, the k-th next best
        with weight ``CLAUSE_DECAY ** k`` (so a clause is worth at most twice
        its best term).  Multi-term clauses come from a small, fixed synonym
        table, so their merged postings are cached.
        """
        term_ids, indptr = self._term_ids, self._indptr
        if len(clause) == 1:
            ((term, weight),) = clause.items()
            t = term_ids[term]
            start, end = indptr[t], indptr[t + 1]
            single = self._post_scores[start:end]
            return self._post_docs[start:end], single if weight == 1.0 else weight * single
        key = tuple(clause.items())
        cache = self._clause_cache
        cached = cache.get(key)
        if cached is not None:
            return cached
        doc_parts, score_parts = [], []
        for term, weight in clause.items():
            t = term_ids[term]
            start, end = indptr[t], indptr[t + 1]
            doc_parts.append(self._post_docs[start:end])
            score_parts.append(weight * self._post_scores[start:end])
        docs = np.concatenate(doc_parts, dtype=np.int32)  # each part a slice of _post_docs
        scores = np.concatenate(score_parts, dtype=np.float64)
        order = np.lexsort((-scores, docs))  # by document, best score first
        docs, scores = docs[order], scores[order]
        first = np.ones(len(docs), dtype=bool)
        first[1:] = docs[1:] != docs[:-1]
        starts = np.flatnonzero(first)
        position = np.arange(len(docs)) - np.maximum.accumulate(first * np.arange(len(docs)))
        merged = np.add.reduceat(CLAUSE_DECAY**position * scores, starts)
        result = (docs[starts], merged)
        if len(cache) >= _CLAUSE_CACHE_SIZE:
            cache.clear()
        cache[key] = result
        return result

    def _clauses(self, query: str) -> list[_Clause]:
        """Turn a query into clauses (term -> weight maps); clause scores add up."""
        terms = _analyze(query)[:MAX_QUERY_TOKENS]
        postings = self._term_ids
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


def _reused_rows(
    docs: list[SearchDocument], reuse: BlockSearchIndex | None, lengths: _Ints
) -> tuple[list[_Ints], list[int]]:
    """The term rows of *reuse* for documents it already had (renumbered to their place in
    *docs*, their field lengths copied into *lengths*), and the positions of the others."""
    if reuse is None or not len(reuse._docs):
        return [], list(range(len(docs)))
    before = {doc: i for i, doc in enumerate(reuse._docs)}
    moved = np.full(len(reuse._docs), -1, dtype=np.int64)
    fresh: list[int] = []
    for index, doc in enumerate(docs):
        old = before.get(doc)
        if old is None:
            fresh.append(index)
        else:
            moved[old] = index
            lengths[index] = reuse._lengths[old]
    rows = reuse._rows
    kept = rows[:, 1] if len(rows) else rows[:0, 1]
    rows = rows[moved[kept] >= 0].copy()
    rows[:, 1] = moved[rows[:, 1]]
    return [rows], fresh


def _analysed_rows(
    docs: list[SearchDocument],
    fresh: list[int],
    lengths: _Ints,
    terms: list[str],
    term_ids: dict[str, int],
    should_stop: Callable[[], bool] | None,
) -> _Ints | None:
    """Term rows (term, document, field, term frequency) of the documents at *fresh*,
    analysed now; new terms are appended to *terms*/*term_ids*, field lengths written to
    *lengths*. Raises :class:`IndexBuildCancelled` when *should_stop* says so."""
    row_terms: list[int] = []
    row_docs: list[int] = []
    row_fields: list[int] = []
    row_tfs: list[int] = []
    fresh_lengths: list[list[int]] = []
    memo: dict[str, list[str]] = {}
    for count, index in enumerate(fresh):
        if should_stop is not None and count % _STOP_CHECK_EVERY == 0 and should_stop():
            raise IndexBuildCancelled
        field_lengths = []
        for f, (counts, length) in enumerate(_analyze_document(docs[index], memo)):
            field_lengths.append(length)
            for term in counts:
                term_id = term_ids.get(term)
                if term_id is None:
                    term_id = term_ids[term] = len(terms)
                    terms.append(term)
                row_terms.append(term_id)
            n = len(counts)
            row_docs += [index] * n
            row_fields += [f] * n
            row_tfs += counts.values()
        fresh_lengths.append(field_lengths)
    if fresh:
        lengths[fresh] = fresh_lengths
    if not row_terms:
        return None
    return np.array([row_terms, row_docs, row_fields, row_tfs], dtype=np.int64).T


def _drop_unused_terms(rows: _Ints, terms: list[str]) -> list[str]:
    """*terms* without those no row uses any more (after a source went away); the rows'
    term numbers are renumbered in place."""
    used = np.zeros(len(terms), dtype=bool)
    used[rows[:, 0]] = True
    if used.all():
        return terms
    renumber = np.cumsum(used) - 1
    rows[:, 0] = renumber[rows[:, 0]]
    return [t for t, u in zip(terms, used.tolist(), strict=True) if u]
