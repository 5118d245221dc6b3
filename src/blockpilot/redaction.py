"""Secret scrubbing for outputs, errors, execution records and log lines.

Two layers: the exact secret values a run was given (plus their base64 and URL-encoded
forms), and common secret *shapes* (bearer tokens, ``api_key=...``, JSON secret fields,
well-known key prefixes) for secrets we were never told about, such as a provider
echoing a key back in an error body.
"""

from __future__ import annotations

import base64
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


def secret_forms(secret: str) -> set[str]:
    """The value and the encodings it commonly leaks in."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret)}
    raw = secret.encode()
    forms.add(base64.b64encode(raw).decode())
    forms.add(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    forms.add(base64.b64encode(raw).decode().rstrip("="))
    return {f for f in forms if len(f) >= _MIN_SECRET_CHARS}


class Redactor:
    """Scrubs a fixed set of secret values (and secret shapes) from any JSON-like value."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= _MIN_SECRET_CHARS:
                forms |= secret_forms(secret)
        # Longest first so a secret containing another is removed whole.
        self._forms = sorted(forms, key=len, reverse=True)

    def scrub_text(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, REDACTED)
        if len(text) < _MIN_PATTERN_MATCH_CHARS or _ANY_PATTERN.search(text) is None:
            return text  # no pattern can change it
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            return {self.scrub_text(k) if isinstance(k, str) else k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        return value


class SecretRegistry:
    """Process-wide set of secret values seen (bounded, most recent kept) for log scrubbing."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._values: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()
        self._redactor = Redactor()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            changed = False
            for secret in secrets:
                if secret and len(secret) >= _MIN_SECRET_CHARS and secret not in self._values:
                    self._values[secret] = None
                    changed = True
                    if len(self._values) > self._capacity:
                        self._values.popitem(last=False)
            if changed:
                self._redactor = Redactor(self._values)

    @property
    def redactor(self) -> Redactor:
        return self._redactor


SECRETS = SecretRegistry()
_installed = False


def install_log_redaction() -> None:
    """Scrub every log record at creation, whatever handler or formatter later sees it."""
    global _installed
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
            record.exc_text = redactor.scrub_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str | dict | list):
                record.__dict__[key] = redactor.scrub(value)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
