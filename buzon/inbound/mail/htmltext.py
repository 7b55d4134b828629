"""HTML for display (sanitised with nh3) and plain text derived from HTML when a message has none."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import nh3

# Bigger HTML than this is cut before sanitising: display of a multi-megabyte body is useless and
# sanitising it costs time per message.
MAX_HTML_CHARS = 2_000_000
_URL_SCHEMES = {"http", "https", "mailto", "cid", "tel"}
_BLOCK = {"p", "div", "br", "tr", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre", "hr"}
_SKIP = {"script", "style", "head", "title"}


def sanitise(markup: str) -> str:
    """Sender HTML made safe to show: no scripts, styles blocks, event handlers or javascript: URLs."""
    if not markup:
        return ""
    return nh3.clean(markup[:MAX_HTML_CHARS], url_schemes=_URL_SCHEMES, link_rel="noopener noreferrer nofollow")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skipping += 1
        elif tag in _BLOCK:
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def to_text(markup: str) -> str:
    if not markup:
        return ""
    parser = _TextExtractor()
    try:
        parser.feed(markup[:MAX_HTML_CHARS])
        parser.close()
    except (AssertionError, ValueError):
        return html.unescape(re.sub(r"<[^>]*>", " ", markup[:MAX_HTML_CHARS])).strip()
    text = "".join(parts for parts in parser.parts)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
