"""HTML to clean Markdown-like text with the standard library's parser.

Scripts, styles, forms and other non-content elements are dropped; headings, lists,
links, emphasis and code keep a Markdown form a model reads well. Nothing is fetched or
executed: the parser only reads the given text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import TypedDict
from urllib.parse import urljoin, urlsplit

_SKIP = frozenset(
    {"script", "style", "noscript", "template", "svg", "iframe", "head", "title", "form", "button",
     "select", "textarea", "canvas", "object", "embed", "nav", "footer"}
)  # fmt: skip
_BLOCK = frozenset(
    {"p", "div", "section", "article", "main", "header", "aside", "table", "tr", "ul", "ol",
     "dl", "dt", "dd", "blockquote", "figure", "figcaption", "hr", "address", "details"}
)  # fmt: skip
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "wbr"})


class _Converter(HTMLParser):
    def __init__(self, base_url: str, keep_links: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.keep_links = keep_links
        self.out: list[str] = []
        self.title = ""
        self.links: list[dict[str, str]] = []
        self._skip_depth = 0
        self._in_title = False
        self._pre = 0
        self._href: list[str | None] = []
        self._link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if self._skip_depth or tag in _SKIP:
            if tag not in _VOID:
                self._skip_depth += tag in _SKIP or bool(self._skip_depth)
            return
        attr = dict(attrs)
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.out.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in _BLOCK:
            self.out.append("\n\n")
        elif tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in ("td", "th"):
            self.out.append(" | ")
        elif tag in ("strong", "b"):
            self.out.append("**")
        elif tag in ("em", "i"):
            self.out.append("_")
        elif tag == "code" and not self._pre:
            self.out.append("`")
        elif tag == "pre":
            self._pre += 1
            self.out.append("\n\n```\n")
        elif tag == "img" and attr.get("alt"):
            self.out.append(f"[image: {attr['alt']}]")
        elif tag == "a":
            href = attr.get("href") or ""
            absolute = urljoin(self.base_url, href) if href else ""
            keep = urlsplit(absolute).scheme in ("http", "https")
            self._href.append(absolute if keep else None)
            self._link_text.append("")
            if keep and self.keep_links:
                self.out.append("[")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if self._skip_depth:
            self._skip_depth -= 1
            return
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6") or tag in _BLOCK:
            self.out.append("\n\n")
        elif tag in ("strong", "b"):
            self.out.append("**")
        elif tag in ("em", "i"):
            self.out.append("_")
        elif tag == "code" and not self._pre:
            self.out.append("`")
        elif tag == "pre" and self._pre:
            self._pre -= 1
            self.out.append("\n```\n\n")
        elif tag == "a" and self._href:
            href = self._href.pop()
            text = " ".join(self._link_text.pop().split())
            if href:
                self.links.append({"text": text, "url": href})
                if self.keep_links:
                    self.out.append(f"]({href})")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._skip_depth:
            return
        if self._link_text:
            self._link_text[-1] += data
        self.out.append(data if self._pre else re.sub(r"\s+", " ", data))


class Page(TypedDict):
    """What :func:`html_to_markdown` gives: the page's title, its text and its links."""

    title: str
    text: str
    links: list[dict[str, str]]


def html_to_markdown(html: str, base_url: str = "", *, keep_links: bool = True) -> Page:
    """``{"title", "text", "links"}`` of *html*: readable Markdown-like text and its links."""
    converter = _Converter(base_url, keep_links)
    converter.feed(html)
    converter.close()
    text = "".join(converter.out)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n[ \t]+", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    text = text.replace("[](", "(")  # links with no text keep only their address
    return {"title": " ".join(converter.title.split()), "text": text, "links": converter.links}
