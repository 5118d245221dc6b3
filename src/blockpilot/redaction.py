"""Secret scrubbing for outputs, errors, execution records and log lines.

Two layers: the exact secret values a run was given (plus their base64 and URL-encoded
forms), and common secret *shapes* (bearer tokens, ``api_key=...``, JSON secret fields,
well-known key prefixes) for secrets we were never told about, such as a provider
echoing a key back in an error body.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

import ahocorasick  # type: ignore[import-not-found]  # pyahocorasick ships no type hints

REDACTED = "[REDACTED]"
_MIN_SECRET_CHARS = 6

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=\-]{8,}"), r"\1 " + REDACTED),
    (
        re.compile(
            r"(?i)([\"']?(?:api[_-]?key|access[_-]?token|refresh[_-]?token|client[_-]?secret|id[_-]?token|"
            r"password|passwd|secret|x-api-key)[\"']?\s*[:=]\s*[\"']?)([^\s\"'&,;}]{4,})"
        ),
        r"\1" + REDACTED,
    ),
    # Passwords in URLs: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s/:@]+:)[^\s/@]+@"), r"\1" + REDACTED + "@"),
    (re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_\-]{12,}"), REDACTED),
    (re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"), REDACTED),
    (re.compile(r"\bxox[abpr]-[A-Za-z0-9\-]{10,}"), REDACTED),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), REDACTED),
)

# No pattern above can match fewer characters than this ("a://b:c@"); shorter text is skipped.
_MIN_PATTERN_MATCH_CHARS = 8
# One pass that finds whether any pattern matches at all; only then are they applied in turn.
_ANY_PATTERN = re.compile(
    "|".join(
        f"(?i:{p.pattern[4:]})" if p.pattern.startswith("(?i)") else f"(?:{p.pattern})"
        for p, _ in _PATTERNS
    )
)

# Text none of the patterns can match holds none of these (after casefold, which maps the
# characters re's IGNORECASE equates with ASCII letters: KELVIN SIGN to k, LONG S to s; the
# dotted/dotless i are why "bas" stands for "basic"). Checking them is ~10x cheaper than
# running _ANY_PATTERN over every log field.
_PATTERN_HINTS = (
    "bearer", "bas", "token", "key", "secret", "passw", "://", "sk-", "pk-", "rk-",
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "akia",
)  # fmt: skip
# The hints as one search: finds one exactly where a hint is a substring, ~3x cheaper than a
# substring test per hint (every log record's fields pass here, docs/performance.md).
_ANY_HINT = re.compile("|".join(re.escape(hint) for hint in _PATTERN_HINTS))


def may_match_a_pattern(text: str) -> bool:
    """False only when no secret pattern can match *text* (a fast pre-check)."""
    if len(text) < _MIN_PATTERN_MATCH_CHARS:
        return False
    return _ANY_HINT.search(text.casefold()) is not None


def secret_forms(secret: str) -> set[str]:
    """The value and the encodings it commonly leaks in.

    Besides base64 and URL encoding, the escaped forms a string takes inside JSON text (a
    body echoed back as text) and inside a Python ``repr`` (an exception message): a
    password with a quote, a backslash or a non-ASCII letter is spelled differently there.
    """
    forms = {secret, quote(secret, safe=""), quote_plus(secret)}
    forms.add(json.dumps(secret)[1:-1])
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    forms.add(repr(secret)[1:-1])
    forms.add(secret.replace("/", "\\/"))  # JSON encoders that escape '/' (PHP's, for one)
    raw = secret.encode()
    forms.add(base64.b64encode(raw).decode())
    forms.add(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    forms.add(base64.b64encode(raw).decode().rstrip("="))
    return {f for f in forms if len(f) >= _MIN_SECRET_CHARS}


_PART_SEPARATORS = re.compile(r"[\s,;=]+")
# Words a stored header value holds beside its secret ("Bearer X", "Token X", "k=X; Path=/").
_NOT_SECRET_PARTS = frozenset(
    {"bearer", "basic", "token", "digest", "apikey", "path", "domain", "httponly", "secure"}
)


def secret_parts(value: str) -> list[str]:
    """The secret-looking parts of a stored value such as a header (``Bearer X`` → ``X``).

    An upstream may echo the token alone, without the scheme the stored value carries, so
    each part that could be a secret is scrubbed on its own too: at least
    ``_MIN_SECRET_CHARS`` long, not a scheme or attribute name, and not a plain word (a
    token has digits, mixed case or symbols).
    """
    parts = [p for p in _PART_SEPARATORS.split(value.strip()) if p]
    if len(parts) < 2:
        return []
    return [
        part
        for part in parts
        if len(part) >= _MIN_SECRET_CHARS
        and part.casefold() not in _NOT_SECRET_PARTS
        and not (part.isalpha() and (part.islower() or part.istitle()))
    ]


# Above this many secret forms a redactor finds them through a _FormIndex, below it with one
# substring test per form (cheaper than any index for a few).
_INDEXED_ABOVE = 64
# The newest forms of a _FormIndex not yet in one of its automata, each looked for with `in`.
_LOOSE = 16
# Searching a text with one automaton more costs about what building one key into an automaton
# costs divided by this (~0.2 against ~1 µs): the index merges its automata into one once the
# passes they have cost beyond one automaton's reach this many per key.
_PASSES_PER_KEY_BUILT = 5


def _key(form: str) -> str:
    # The end, not the start: secrets of one kind share their start ("sk-proj-", "ghp_").
    return form[-_MIN_SECRET_CHARS:]


def _form_order(form: str) -> tuple[int, str]:
    return (-len(form), form)  # longest first, so a secret containing another goes whole


class _FormIndex:
    """Which of many secret forms a text holds, found by where their keys occur in it.

    A form's key is its last ``_MIN_SECRET_CHARS`` characters; ``forms`` maps each key to
    the forms ending in it. Where keys occur in a text is found by Aho-Corasick automata over
    the keys (pyahocorasick, in C) instead of a dict lookup per text position in Python
    (docs/performance.md#round-seven-issue-17-the-http-layer-and-redaction): every log line
    passes here once a server holds a few secrets.

    An automaton takes no key once built, and building one over 10,000 secrets' keys takes
    tens of milliseconds, so adding a secret does not rebuild it: the newest forms (up to
    ``_LOOSE``) are looked for with ``in``, older keys sit in a few automata each more than
    twice the size of the next newer one (a flush merges the new keys with every newer
    automaton up to twice their number: the logarithmic method, so a key is built O(log n)
    times). Once searching the extra automata (and loose forms) has cost about what building
    them all into one would (``_PASSES_PER_KEY_BUILT``), the search that finds so merges them
    all (~40 ms with 10,000 secrets): searches never spend much more on extra automata than
    merges would, however often secrets come, and a registry that stops changing ends with
    one automaton. A removed form's key stays in its automaton until that one is merged: it
    is found there, with no form ending in it.

    Written under ``_lock``, read by any thread without it: ``forms`` changes in place, the
    loose forms and the automata are replaced whole.
    """

    def __init__(self) -> None:
        self.forms: dict[str, tuple[str, ...]] = {}
        self._loose: tuple[str, ...] = ()
        self._automata: tuple[tuple[Any, frozenset[str]], ...] = ()  # oldest (largest) first
        self._lock = threading.Lock()
        self._extra_passes = 0  # automaton passes beyond one, since they were last merged
        self._merge_all_after = 0

    def add(self, forms: Iterable[str]) -> None:
        """Index *forms*, none of them indexed already."""
        with self._lock:
            loose = list(self._loose)
            for form in forms:
                key = _key(form)
                self.forms[key] = (*self.forms.get(key, ()), form)
                loose.append(form)
            if len(loose) > _LOOSE:
                self._merge({_key(form) for form in loose}, everything=False)
                loose = []
            self._loose = tuple(loose)
            self._merge_all_after = _PASSES_PER_KEY_BUILT * len(self.forms)

    def remove(self, form: str) -> None:
        with self._lock:
            key = _key(form)
            rest = tuple(f for f in self.forms.get(key, ()) if f != form)
            if rest:
                self.forms[key] = rest
            else:
                self.forms.pop(key, None)
            if form in self._loose:
                self._loose = tuple(f for f in self._loose if f != form)

    def _merge(self, keys: set[str], *, everything: bool) -> None:
        automata = list(self._automata)
        while automata and (everything or len(automata[-1][1]) <= 2 * len(keys)):
            keys |= automata.pop()[1]
        live = frozenset(key for key in keys if key in self.forms)  # drop removed forms' keys
        if live:
            automaton = ahocorasick.Automaton()
            for key in live:
                automaton.add_word(key, key)
            automaton.make_automaton()
            automata.append((automaton, live))
        self._automata = tuple(automata)

    def _merge_all(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # being changed: the next search merges
        try:
            self._merge({_key(form) for form in self._loose}, everything=True)
            self._loose = ()
            self._extra_passes = 0
        finally:
            self._lock.release()

    def present(self, text: str) -> set[str]:
        """Every indexed form occurring in *text*."""
        # The loose forms first: a merge replaces the automata before it empties them.
        loose = self._loose
        automata = self._automata
        extra = len(automata) - (0 if loose else 1)
        if extra > 0:
            self._extra_passes += extra  # unlocked: a count off by a few changes nothing
            if self._extra_passes > self._merge_all_after:
                self._merge_all()
        found = {form for form in loose if form in text} if loose else set()
        forms = self.forms
        for automaton, _ in automata:
            for last, key in automaton.iter(text):  # every occurrence, overlapping ones too
                for form in forms.get(key, ()):
                    start = last + 1 - len(form)
                    if start >= 0 and text.startswith(form, start):
                        found.add(form)
        return found


def _scrub_indexed(text: str, index: _FormIndex) -> str:
    """What replacing each form in longest-first order gives, looking only at forms present.

    A replacement can make a later form appear (across the inserted marker), so the text is
    looked at again after each one; without replacements (the usual case) it is one pass.
    """
    present = index.present(text)
    if not present:
        return text
    candidates = sorted(present, key=_form_order)
    i = 0
    while i < len(candidates):
        form = candidates[i]
        if form in text:
            text = text.replace(form, REDACTED)
            after = _form_order(form)
            later = {f for f in index.present(text) if _form_order(f) > after}
            candidates = candidates[: i + 1] + sorted(later, key=_form_order)
        i += 1
    return text


class Redactor:
    """Scrubs a fixed set of secret values (and secret shapes) from any JSON-like value."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= _MIN_SECRET_CHARS:
                forms |= secret_forms(secret)
        # Longest first so a secret containing another is removed whole.
        self._forms = sorted(forms, key=len, reverse=True)
        self._index: _FormIndex | None = None
        if len(self._forms) > _INDEXED_ABOVE:
            self._index = _FormIndex()
            self._index.add(self._forms)

    @classmethod
    def _over_index(cls, index: _FormIndex) -> Redactor:
        """A redactor reading *index*, which its owner keeps up to date (SecretRegistry)."""
        redactor = cls()
        redactor._index = index
        return redactor

    def scrub_text(self, text: str) -> str:
        if len(text) < _MIN_SECRET_CHARS:
            return text  # shorter than any secret form, and than any pattern's match
        if self._index is not None:
            text = _scrub_indexed(text, self._index)
        else:
            for form in self._forms:
                if form in text:
                    text = text.replace(form, REDACTED)
        if not may_match_a_pattern(text) or _ANY_PATTERN.search(text) is None:
            return text  # no pattern can change it
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            return {
                self.scrub_text(k) if isinstance(k, str) else k: self.scrub(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        return value


class SecretRegistry:
    """Process-wide set of secret values seen (bounded, most recent kept) for log scrubbing.

    Adding a secret updates the registry's form index without rebuilding everything seen so
    far (see :class:`_FormIndex`), so it costs about the same with 10 secrets known or 10,000.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._values: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()
        self._form_counts: dict[str, int] = {}
        self._index = _FormIndex()
        self._redactor = Redactor()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            changed = False
            new: dict[str, None] = {}  # forms first seen in this call: indexed in one batch
            for secret in secrets:
                if secret and len(secret) >= _MIN_SECRET_CHARS and secret not in self._values:
                    forms = tuple(secret_forms(secret))
                    self._values[secret] = forms
                    for form in forms:
                        count = self._form_counts.get(form, 0)
                        if not count:
                            new[form] = None
                        self._form_counts[form] = count + 1
                    changed = True
                    if len(self._values) > self._capacity:
                        _, forms = self._values.popitem(last=False)
                        self._forget(forms, new)
            if new:
                self._index.add(new)
            if changed:
                if len(self._form_counts) > _INDEXED_ABOVE:
                    self._redactor = Redactor._over_index(self._index)
                else:
                    self._redactor = Redactor(self._values)

    def _forget(self, forms: Iterable[str], new: dict[str, None]) -> None:
        """Count an evicted secret's forms out; unindex those no other secret has."""
        for form in forms:
            count = self._form_counts[form] - 1
            if count:
                self._form_counts[form] = count
                continue
            del self._form_counts[form]
            if form in new:
                del new[form]
            else:
                self._index.remove(form)

    @property
    def redactor(self) -> Redactor:
        return self._redactor


SECRETS = SecretRegistry()
_installed = False
_factory: Any = None  # install_log_redaction's record factory
_factory_wraps: Any = None  # the factory it builds records with


def log_messages_scrubbed() -> bool | None:
    """What the current log record factory does to a record's message: True when it is
    :func:`install_log_redaction`'s over the standard ``LogRecord`` (``msg % args``, then
    scrubbed with ``SECRETS``), False when it is the standard ``LogRecord`` (as formatted),
    None for any other factory. A log line written without a record uses this to write
    what a record would have held (:func:`blockpilot.api.logs.log_info`)."""
    current = logging.getLogRecordFactory()
    if current is logging.LogRecord:
        return False
    if current is _factory and _factory_wraps is logging.LogRecord:
        return True
    return None


def install_log_redaction() -> None:
    """Scrub every log record at creation, whatever handler or formatter later sees it."""
    global _installed, _factory, _factory_wraps
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redactor = SECRETS.redactor
        try:
            record.msg = redactor.scrub_text(record.getMessage())
            record.args = None
        except Exception:  # noqa: BLE001 - a malformed log call must not break logging
            pass
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redactor.scrub_text(
                logging.Formatter().formatException(record.exc_info)
            )
            record.exc_info = None
        fields = record.__dict__
        for key in fields.keys() - _STANDARD_ATTRS:  # the extra fields
            value = fields[key]
            if isinstance(value, str | dict | list):
                fields[key] = redactor.scrub(value)
        return record

    logging.setLogRecordFactory(factory)
    _factory, _factory_wraps = factory, previous
    _installed = True


_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}
