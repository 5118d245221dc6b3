"""The secret-form index (Aho-Corasick automata over form keys) finds exactly what the
round-six index found: a dict from each form's last six characters to its forms, looked up
at every text position in Python. That implementation is kept here as the reference
(docs/performance.md#round-seven-issue-17-the-http-layer-and-redaction)."""

from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blockpilot.redaction import (
    _INDEXED_ABOVE,
    _LOOSE,
    _PASSES_PER_KEY_BUILT,
    REDACTED,
    Redactor,
    SecretRegistry,
    _form_order,
    _FormIndex,
    secret_forms,
)

# -- the reference: redaction.py's index as of 50839a7 ---------------------------------------

_MIN = 6
_RefIndex = dict[str, tuple[str, ...]]


def _ref_index(forms: set[str]) -> _RefIndex:
    index: _RefIndex = {}
    for form in forms:
        key = form[-_MIN:]
        index[key] = (*index.get(key, ()), form)
    return index


def _ref_present(text: str, index: _RefIndex) -> set[str]:
    found: set[str] = set()
    get = index.get
    for end in range(_MIN, len(text) + 1):
        bucket = get(text[end - _MIN : end])
        if bucket:
            found.update(
                form
                for form in bucket
                if len(form) <= end and text.startswith(form, end - len(form))
            )
    return found


def _ref_scrub_indexed(text: str, index: _RefIndex) -> str:
    candidates = sorted(_ref_present(text, index), key=_form_order)
    i = 0
    while i < len(candidates):
        form = candidates[i]
        if form in text:
            text = text.replace(form, REDACTED)
            after = _form_order(form)
            later = {f for f in _ref_present(text, index) if _form_order(f) > after}
            candidates = candidates[: i + 1] + sorted(later, key=_form_order)
        i += 1
    return text


def _ref_scrub(forms: set[str], text: str) -> str:
    """What 50839a7's indexed Redactor.scrub_text returned (forms, then the secret shapes)."""
    if len(text) < _MIN:
        return text
    return Redactor().scrub_text(_ref_scrub_indexed(text, _ref_index(forms)))


def _forms_of(secrets: list[str]) -> set[str]:
    return {f for s in secrets if s and len(s) >= _MIN for f in secret_forms(s)}


# -- strategies: few letters, so forms overlap, contain each other and the marker's letters --

_LETTERS = 'abAB01/+=_-"\\é😀[]REDACT'
_FORM = st.text(alphabet=_LETTERS + "\udc80", min_size=_MIN, max_size=14)
_SECRET = st.text(alphabet=_LETTERS, min_size=_MIN, max_size=12)


@st.composite
def _text_of(draw: st.DrawFn, pieces: list[str]) -> str:
    """A text of the given pieces (whole or cut) and random letters between them."""
    parts = draw(
        st.lists(
            st.one_of(
                st.sampled_from(pieces).flatmap(
                    lambda p: st.tuples(st.integers(0, 3), st.integers(0, 3)).map(
                        lambda cut: p[cut[0] : len(p) - cut[1]] if cut != (0, 0) else p
                    )
                ),
                st.text(alphabet=_LETTERS + " ", max_size=5),
                st.just(REDACTED),
            ),
            max_size=8,
        )
    )
    return "".join(parts)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.lists(_FORM, min_size=1, max_size=60, unique=True))
def test_the_index_finds_the_forms_the_reference_finds(
    data: st.DataObject, forms: list[str]
) -> None:
    index = _FormIndex()
    # In several batches, so that loose forms and automata of several sizes are all searched.
    step = max(1, len(forms) // 4)
    for i in range(0, len(forms), step):
        index.add(forms[i : i + step])
    reference = _ref_index(set(forms))
    for _ in range(4):
        text = data.draw(_text_of(forms))
        assert index.present(text) == _ref_present(text, reference)


def test_overlapping_forms_and_a_form_inside_another_are_all_found() -> None:
    forms = ["abcdef", "bcdefg", "xabcdefgx", *(f"filler{i:03d}" for i in range(_LOOSE))]
    index = _FormIndex()
    index.add(forms)
    assert len(index._automata) == 1 and not index._loose
    for text in ["xabcdefgx", "abcdefg", "abcdeabcdefgh"]:
        assert index.present(text) == _ref_present(text, _ref_index(set(forms)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.lists(_SECRET, min_size=20, max_size=40, unique=True))
def test_scrubbing_with_many_forms_gives_what_the_reference_gives(
    data: st.DataObject, secrets: list[str]
) -> None:
    forms = _forms_of(secrets)
    redactor = Redactor(secrets)
    if len(forms) <= _INDEXED_ABOVE:
        assert redactor._index is None
        return
    assert redactor._index is not None
    pieces = sorted(forms) + [REDACTED[:4], REDACTED[-4:]]
    for _ in range(4):
        text = data.draw(_text_of(pieces))
        assert redactor.scrub_text(text) == _ref_scrub(forms, text)


def test_replacements_that_make_a_later_form_appear_are_followed() -> None:
    # Replacing the longest form leaves "[REDACTED]x1", which holds the shorter "ED]x1y".
    secrets = [f"pad{i:03d}pad" for i in range(30)] + ["qqqqqqqqqq", "ED]x1y", "TED]x1"]
    forms = _forms_of(secrets)
    assert len(forms) > _INDEXED_ABOVE
    text = "a qqqqqqqqqq]x1y b qqqqqqqqqqx1 c pad007pad"
    assert Redactor(secrets).scrub_text(text) == _ref_scrub(forms, text)


# -- the process-wide registry: adds, evictions and merges in any order ----------------------


def _registry_reference(registry: SecretRegistry, text: str) -> str:
    """What 50839a7's registry returned for its current secrets."""
    values = list(registry._values)
    forms = _forms_of(values)
    if len(forms) <= _INDEXED_ABOVE:
        return Redactor(values).scrub_text(text)  # the plain loop, as before
    return _ref_scrub(forms, text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.data(),
    st.integers(min_value=5, max_value=40),
    st.lists(st.lists(_SECRET, min_size=1, max_size=4), min_size=1, max_size=30),
)
def test_the_registry_scrubs_as_the_reference_through_adds_and_evictions(
    data: st.DataObject, capacity: int, credentials: list[list[str]]
) -> None:
    registry = SecretRegistry(capacity=capacity)
    seen: list[str] = []
    for values in credentials:
        registry.add(values)
        seen += values
        text = data.draw(_text_of(seen + [REDACTED]))
        assert registry.redactor.scrub_text(text) == _registry_reference(registry, text)


def _secret(i: int) -> str:
    return f"sk-{'k' * (i % 7)}Zq/é-{i:06d}"


def test_searching_merges_the_automata_into_one_and_drops_evicted_keys() -> None:
    registry = SecretRegistry(capacity=60)
    for i in range(80):  # one credential at a time: loose forms and automata of several sizes
        registry.add([_secret(i)])
    index = registry.redactor._index
    assert index is not None
    sizes = [len(keys) for _, keys in index._automata]
    assert len(sizes) > 1
    assert all(older > 2 * newer for older, newer in zip(sizes, sizes[1:], strict=False))
    text = f"a {_secret(5)} b {_secret(70)} c {_secret(79)}"
    expected = _registry_reference(registry, text)
    assert expected == f"a {_secret(5)} b {REDACTED} c {REDACTED}"  # 5 was evicted
    # Enough searches to have cost what one merge costs (bounded: it must come).
    for _ in range(_PASSES_PER_KEY_BUILT * len(index.forms) + 10):
        assert registry.redactor.scrub_text(text) == expected
        if len(index._automata) == 1 and not index._loose:
            break
    assert len(index._automata) == 1 and not index._loose
    (_, keys) = index._automata[0]
    assert keys == set(index.forms)  # the evicted secrets' keys are gone
    assert registry.redactor.scrub_text(text) == expected


def test_an_evicted_form_added_again_is_found_again() -> None:
    registry = SecretRegistry(capacity=20)
    for i in range(40):
        registry.add([_secret(i)])
    text = f"x {_secret(0)} y"
    assert registry.redactor.scrub_text(text) == text  # evicted, its key maybe still built in
    registry.add([_secret(0)])
    assert registry.redactor.scrub_text(text) == f"x {REDACTED} y"


@pytest.mark.parametrize("text", ["😀😀abcdef😀", "é\udc80abcdefg", "\udc80\udc80cd\udc80efé"])
def test_non_ascii_and_lone_surrogates(text: str) -> None:
    forms = ["abcdef", "bcdefg", "cd\udc80efé", "😀abcde", "f😀xxxx"]
    index = _FormIndex()
    index.add(forms[:2])
    index.add(forms[2:] + [f"filler{i:03d}" for i in range(_LOOSE)])
    assert len(index._automata) >= 1
    assert index.present(text) == _ref_present(text, _ref_index(set(forms)))


def test_a_form_registered_before_a_search_is_never_missed_while_others_are_added() -> None:
    registry = SecretRegistry()
    registry.add([_secret(i) for i in range(100)])
    missed: list[str] = []
    stop = threading.Event()

    def search() -> None:
        while not stop.is_set():
            for i in range(0, 100, 7):
                text = f"<{_secret(i)}>"
                if registry.redactor.scrub_text(text) != f"<{REDACTED}>":
                    missed.append(text)

    searchers = [threading.Thread(target=search) for _ in range(3)]
    for thread in searchers:
        thread.start()
    try:
        for i in range(100, 1100):  # flushes, merges, and searches merging everything
            registry.add([_secret(i)])
    finally:
        stop.set()
        for thread in searchers:
            thread.join()
    assert missed == []
