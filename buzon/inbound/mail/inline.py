"""Inline images: ``cid:`` references in a message's HTML, linked to the message's own parts.

A sender's HTML names the images sent with it by Content-ID (RFC 2392: ``<img src="cid:logo@x">``,
the id URL-encoded, without angle brackets). The sanitiser keeps ``cid:`` sources; the reader's view
points each at the part it names, served by Buzón itself, so inline images show without fetching
anything remote. A ``cid:`` naming no part of the message is kept only as ``data-missing-src``: a
browser asked to load an unknown scheme may still try (and report a request), so none is left as a source.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable, Iterable
from urllib.parse import unquote

from django.utils.html import escape

# The sanitiser (nh3) writes every attribute as name="value".
_CID_SRC_RE = re.compile(r'(<img\b[^>]*?\ssrc=)"cid:([^"]*)"', re.I)

#: Content types an inline part is shown as (raster images; SVG can carry script, so never).
SHOWN_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
#: Attachments the conversation page previews beside their download link: raster images and plain
#: text, served under a sandboxing CSP. (PDF is not among them: a browser's PDF viewer cannot run in
#: that sandbox, and outside it a PDF's scripts would run in Buzón's origin; PDFs are downloaded.)
PREVIEW_TYPES = SHOWN_TYPES | {"text/plain"}


def content_id_of_url(url_part: str) -> str:
    """RFC 2392: the Content-ID a ``cid:`` URL names (percent-decoded, no angle brackets)."""
    return unquote(html_lib.unescape(url_part)).strip().strip("<>")


def link_inline_images(markup: str, parts: Iterable[tuple[str, str]], url_of: Callable[[str], str]) -> str:
    """``markup`` with each ``src="cid:..."`` naming one of ``parts`` (content id, key) replaced by
    ``url_of(key)``, and each naming none turned into ``data-missing-src``. Content-IDs compare
    exactly, then without regard to case (clients differ)."""
    exact: dict[str, str] = {}
    folded: dict[str, str] = {}
    for content_id, key in parts:
        content_id = content_id.strip().strip("<>")
        if content_id:
            exact.setdefault(content_id, key)
            folded.setdefault(content_id.lower(), key)
    if "cid:" not in markup.lower():
        return markup

    def replace(match: re.Match[str]) -> str:
        wanted = content_id_of_url(match.group(2))
        key = exact.get(wanted) or folded.get(wanted.lower())
        if key is None:
            return f'{match.group(1)[:-len("src=")]}data-missing-src="cid:{match.group(2)}"'
        return f'{match.group(1)}"{escape(url_of(key))}"'

    return _CID_SRC_RE.sub(replace, markup)
