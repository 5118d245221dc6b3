"""Tests for blockpilot.blocks.search."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blockpilot.blocks.search import (
    BlockSearchIndex,
    SearchDocument,
    SearchHit,
    normalize_block_name,
    stem,
    tokenize,
)
from blockpilot.errors import InvalidInputError


def _doc(
    id_: str,
    name: str,
    description: str,
    categories: tuple[str, ...],
    fields: tuple[tuple[str, str], ...],
) -> SearchDocument:
    return SearchDocument(
        id=id_, name=name, description=description, categories=categories, fields=fields
    )


DOCS: tuple[SearchDocument, ...] = (
    _doc(
        "calc",
        "CalculatorBlock",
        "Performs a mathematical operation (add, subtract, multiply, divide, power) "
        "on two numbers.",
        ("logic",),
        (
            ("operation", "The operation to perform"),
            ("a", "First number"),
            ("b", "Second number"),
            ("round_result", "Whether to round the result to an integer"),
            ("result", "The numeric result"),
        ),
    ),
    _doc(
        "fill-template",
        "FillTextTemplateBlock",
        "Formats a text template by replacing {placeholders} with the provided values.",
        ("text",),
        (
            ("format", "Template string with {named} placeholders"),
            ("values", "Mapping of placeholder names to values"),
            ("output", "The formatted text"),
        ),
    ),
    _doc(
        "store-value",
        "StoreValueBlock",
        "Forwards a constant input unchanged so it can be reused by later steps.",
        ("basic",),
        (("input", "Any data to keep"), ("output", "The same data")),
    ),
    _doc(
        "web-request",
        "SendWebRequestBlock",
        "Makes an HTTP request to a URL with the given method, headers and body "
        "and returns the response.",
        ("output", "developer tools"),
        (
            ("url", "The URL to call"),
            ("method", "HTTP method such as GET or POST"),
            ("headers", "Request headers"),
            ("body", "Request body"),
            ("response", "The response body"),
            ("status", "HTTP status code"),
        ),
    ),
    _doc(
        "auth-web-request",
        "SendAuthenticatedWebRequestBlock",
        "Makes an HTTP request authenticated with a stored API key or bearer token credential.",
        ("output", "developer tools"),
        (
            ("url", "The URL to call"),
            ("method", "HTTP method"),
            ("credentials", "Host-scoped API key or bearer token"),
            ("response", "The response body"),
        ),
    ),
    _doc(
        "ai-text",
        "AITextGeneratorBlock",
        "Generates text from a prompt using a large language model such as GPT-4o or Claude.",
        ("ai", "text"),
        (
            ("prompt", "The prompt sent to the model"),
            ("model", "The language model to use"),
            ("sys_prompt", "Optional system prompt"),
            ("response", "The generated text"),
        ),
    ),
    _doc(
        "send-email",
        "SendEmailBlock",
        "Sends an email through the user's SMTP server.",
        ("output", "communication"),
        (
            ("to_email", "Recipient email address"),
            ("subject", "Subject line"),
            ("body", "Message body"),
            ("status", "Delivery status"),
        ),
    ),
    _doc(
        "gh-read-issue",
        "GithubReadIssueBlock",
        "Reads the title, body and author of a GitHub issue.",
        ("developer tools",),
        (
            ("issue_url", "URL of the GitHub issue"),
            ("title", "Issue title"),
            ("body", "Issue body"),
            ("user", "Issue author"),
        ),
    ),
    _doc(
        "ws-write",
        "WriteWorkspaceFileBlock",
        "Writes text content to a file in the user's workspace.",
        ("files",),
        (("path", "Relative path of the file"), ("content", "Text to write")),
    ),
    _doc(
        "ws-read",
        "ReadWorkspaceFileBlock",
        "Reads a text file from the user's workspace.",
        ("files",),
        (("path", "Relative path of the file"), ("content", "The file content")),
    ),
    _doc(
        "ws-list",
        "ListWorkspaceFilesBlock",
        "Lists the files in the user's workspace directory.",
        ("files",),
        (("directory", "Directory to list"), ("files", "Names of the files found")),
    ),
    _doc(
        "gh-list-prs",
        "GithubListPullRequestsBlock",
        "Lists open pull requests of a GitHub repository.",
        ("developer tools",),
        (("repo_url", "URL of the GitHub repository"), ("pull_requests", "The pull requests")),
    ),
)


@pytest.fixture(scope="module")
def index() -> BlockSearchIndex:
    return BlockSearchIndex(DOCS)


def _top(index: BlockSearchIndex, query: str) -> str:
    hits = index.search(query)
    assert hits, f"no hits for {query!r}"
    return hits[0].id


# --------------------------------------------------------------------------- analysis


def test_tokenize_splits_camel_case_acronyms_and_punctuation() -> None:
    assert tokenize("HTTPRequest") == ["http", "request", "httprequest"]
    assert tokenize("api_key") == ["api", "key"]
    assert tokenize("GitHub") == ["git", "hub", "github"]
    assert tokenize("") == []
    assert tokenize("to the") == []  # stop words only


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("emails", "email"),
        ("addresses", "address"),
        ("queries", "query"),
        ("sending", "send"),
        ("running", "run"),
        ("created", "creat"),
        ("create", "creat"),
        ("creating", "creat"),
        ("templates", "templat"),
        ("class", "class"),
        ("api", "api"),
        ("2024", "2024"),
    ],
)
def test_stem(word: str, expected: str) -> None:
    assert stem(word) == expected


def test_normalize_block_name() -> None:
    for variant in (
        "SendWebRequestBlock",
        "send web request",
        "send_web_request",
        "sendwebrequest",
        "Send-Web-Request block",
        "  SENDWEBREQUEST  ",
    ):
        assert normalize_block_name(variant) == "sendwebrequest"
    assert normalize_block_name("Block") == "block"


# --------------------------------------------------------------------------- exact names


@pytest.mark.parametrize(
    "query",
    [
        "SendWebRequestBlock",
        "SendWebRequest",
        "send web request",
        "send_web_request",
        "sendwebrequest",
        "Send Web Request Block",
    ],
)
def test_exact_name_variants(index: BlockSearchIndex, query: str) -> None:
    assert index.exact_name_lookup(query) == "web-request"
    hits = index.search(query)
    assert hits[0].id == "web-request"
    assert all(hits[0].score > other.score for other in hits[1:])


def test_exact_name_ranks_first_even_against_stronger_keyword_match(
    index: BlockSearchIndex,
) -> None:
    # "store value" is also a description/field heavy query for other blocks.
    assert _top(index, "store value") == "store-value"
    assert _top(index, "Calculator") == "calc"
    assert _top(index, "github read issue") == "gh-read-issue"


def test_exact_name_lookup_misses(index: BlockSearchIndex) -> None:
    assert index.exact_name_lookup("send web") is None
    assert index.exact_name_lookup("") is None
    assert index.exact_name_lookup("Block") is None


# --------------------------------------------------------------------------- keywords


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("multiply two numbers", "calc"),
        ("replace placeholders in a template", "fill-template"),
        ("send an email", "send-email"),
        ("email", "send-email"),
        ("http request with bearer token", "auth-web-request"),
        ("api key authenticated request", "auth-web-request"),
        ("generate text from a prompt", "ai-text"),
        ("language model", "ai-text"),
        ("github issue", "gh-read-issue"),
        ("pull requests", "gh-list-prs"),
        ("write text to a file", "ws-write"),
        ("read file", "ws-read"),
        ("list files in directory", "ws-list"),
        ("constant", "store-value"),
    ],
)
def test_keyword_queries(index: BlockSearchIndex, query: str, expected: str) -> None:
    assert _top(index, query) == expected


# --------------------------------------------------------------------------- synonyms


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("mail", "send-email"),
        ("smtp", "send-email"),
        ("fetch url", "web-request"),
        ("http get", "web-request"),
        ("llm", "ai-text"),
        ("chat gpt", "ai-text"),
        ("text generation", "ai-text"),
        ("arithmetic", "calc"),
        ("calculate", "calc"),
        ("math", "calc"),
        ("save to workspace", "ws-write"),
    ],
)
def test_synonyms(index: BlockSearchIndex, query: str, expected: str) -> None:
    assert _top(index, query) == expected


# --------------------------------------------------------------------------- typos


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("emial", "send-email"),
        ("send emial", "send-email"),
        ("calculater", "calc"),
        ("gihtub issue", "gh-read-issue"),
        ("templte", "fill-template"),
        ("workspcae file list", "ws-list"),
    ],
)
def test_typo_tolerance(index: BlockSearchIndex, query: str, expected: str) -> None:
    assert _top(index, query) == expected


def test_nonsense_finds_nothing(index: BlockSearchIndex) -> None:
    assert index.search("qwzxv plokij") == []


# --------------------------------------------------------------------------- contract


@pytest.mark.parametrize("query", ["", "   ", "\n\t", "!!!", "the of to"])
def test_empty_query(index: BlockSearchIndex, query: str) -> None:
    assert index.search(query) == []


def test_limit_honoured(index: BlockSearchIndex) -> None:
    everything = index.search("file text request issue email", limit=100)
    assert len(everything) > 3
    for limit in range(len(everything) + 2):
        hits = index.search("file text request issue email", limit=limit)
        assert len(hits) == min(limit, len(everything))
        assert hits == everything[:limit]
    # exact match with limit 1
    assert index.search("send email", limit=1) == [index.search("send email")[0]]


def test_negative_limit_rejected(index: BlockSearchIndex) -> None:
    with pytest.raises(InvalidInputError):
        index.search("email", limit=-1)


def test_results_sorted_and_unique(index: BlockSearchIndex) -> None:
    hits = index.search("send request to a workspace file", limit=20)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert len({h.id for h in hits}) == len(hits)
    assert all(isinstance(h, SearchHit) and h.score > 0 for h in hits)


def test_deterministic_across_builds_and_input_order() -> None:
    queries = ["file", "request", "text", "emial", "github", "workspace", "value"]
    a = BlockSearchIndex(DOCS)
    b = BlockSearchIndex(reversed(DOCS))
    for q in queries:
        first = a.search(q, limit=20)
        assert first == a.search(q, limit=20)
        assert first == b.search(q, limit=20)


def test_ties_broken_by_name() -> None:
    docs = [
        SearchDocument(id=f"id-{n}", name=n, description="Sends a widget.")
        for n in ("ZetaBlock", "AlphaBlock", "MikeBlock")
    ]
    hits = BlockSearchIndex(docs).search("widget")
    assert [h.id for h in hits] == ["id-AlphaBlock", "id-MikeBlock", "id-ZetaBlock"]
    assert len({h.score for h in hits}) == 1


def test_name_outweighs_description() -> None:
    docs = [
        SearchDocument(id="described", name="GadgetBlock", description="Makes a widget."),
        SearchDocument(id="named", name="WidgetMakerBlock", description="Makes things."),
    ]
    assert [h.id for h in BlockSearchIndex(docs).search("widget")] == ["named", "described"]


def test_duplicate_ids_rejected() -> None:
    doc = DOCS[0]
    with pytest.raises(InvalidInputError):
        BlockSearchIndex([doc, doc])


def test_empty_index() -> None:
    index = BlockSearchIndex([])
    assert len(index) == 0
    assert index.search("anything") == []
    assert index.exact_name_lookup("anything") is None


# --------------------------------------------------------------------------- property


@settings(max_examples=300, deadline=None)
@given(query=st.text(), limit=st.integers(min_value=0, max_value=15))
def test_search_never_raises(query: str, limit: int) -> None:
    index = _PROPERTY_INDEX
    hits = index.search(query, limit=limit)
    assert isinstance(hits, list)
    assert len(hits) <= limit
    assert len({h.id for h in hits}) == len(hits)
    index.exact_name_lookup(query)


_PROPERTY_INDEX = BlockSearchIndex(DOCS)
