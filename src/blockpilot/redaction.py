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


# Above this many secret forms a redactor finds them through an index of their last
# _MIN_SECRET_CHARS characters (one dict lookup per text position) instead of one substring
# search per form: with the secrets of thousands of users that is ~1,000x cheaper per text.
# The end, not the start: secrets of one kind share their start ("sk-proj-", "ghp_").
_INDEXED_ABOVE = 64

_FormIndex = dict[str, tuple[str, ...]]


def _form_order(form: str) -> tuple[int, str]:
    return (-len(form), form)  # longest first, so a secret containing another goes whole


def _index_add(index: _FormIndex, form: str) -> None:
    key = form[-_MIN_SECRET_CHARS:]
    index[key] = (*index.get(key, ()), form)


def _index_remove(index: _FormIndex, form: str) -> None:
    key = form[-_MIN_SECRET_CHARS:]
    rest = tuple(f for f in index.get(key, ()) if f != form)
    if rest:
        index[key] = rest
    else:
        index.pop(key, None)


def _present(text: str, index: _FormIndex) -> set[str]:
    """Every indexed form occurring in *text* (looked up by where it would end)."""
    found: set[str] = set()
    get = index.get
    for end in range(_MIN_SECRET_CHARS, len(text) + 1):
        bucket = get(text[end - _MIN_SECRET_CHARS : end])
        if bucket:
            found.update(
                form
                for form in bucket
                if len(form) <= end and text.startswith(form, end - len(form))
            )
    return found


def _scrub_indexed(text: str, index: _FormIndex) -> str:
    """What replacing each form in longest-first order gives, looking only at forms present.

    A replacement can make a later form appear (across the inserted marker), so the text is
    looked at again after each one; without replacements (the usual case) it is one pass.
    """
    candidates = sorted(_present(text, index), key=_form_order)
    i = 0
    while i < len(candidates):
        form = candidates[i]
        if form in text:
            text = text.replace(form, REDACTED)
            after = _form_order(form)
            later = {f for f in _present(text, index) if _form_order(f) > after}
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
            self._index = {}
            for form in self._forms:
                _index_add(self._index, form)

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

    Adding a secret updates the registry's form index in place (no rebuild of everything
    seen so far), so it costs the same with 10 secrets known or 10,000.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._values: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()
        self._form_counts: dict[str, int] = {}
        self._index: _FormIndex = {}
        self._redactor = Redactor()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            changed = False
            for secret in secrets:
                if secret and len(secret) >= _MIN_SECRET_CHARS and secret not in self._values:
                    self._values[secret] = self._count(secret_forms(secret), +1)
                    changed = True
                    if len(self._values) > self._capacity:
                        _, forms = self._values.popitem(last=False)
                        self._count(forms, -1)
            if changed:
                if len(self._form_counts) > _INDEXED_ABOVE:
                    self._redactor = Redactor._over_index(self._index)
                else:
                    self._redactor = Redactor(self._values)

    def _count(self, forms: Iterable[str], delta: int) -> tuple[str, ...]:
        forms = tuple(forms)
        for form in forms:
            count = self._form_counts.get(form, 0) + delta
            if count > 0:
                if form not in self._form_counts:
                    _index_add(self._index, form)
                self._form_counts[form] = count
            else:
                self._form_counts.pop(form, None)
                _index_remove(self._index, form)
        return forms

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
