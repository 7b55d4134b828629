"""What a page loads (scripts, stylesheets, images, frames, fonts): it must all come from Buzón
itself, never from a CDN or any other host; a site may run where nothing else can be reached."""

from __future__ import annotations

import re

_LOADED = re.compile(r"""<(?:script|img|iframe|source|embed)\b[^>]*?\bsrc\s*=\s*["']([^"']+)"""
                     r"""|<link\b[^>]*?\bhref\s*=\s*["']([^"']+)"""
                     r"""|url\(\s*["']?([^)"']+)""", re.IGNORECASE)
_ELSEWHERE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)


def loaded(html: str) -> list[str]:
    """The address of everything the page loads."""
    return [next(url for url in match if url) for match in _LOADED.findall(html)]


def from_elsewhere(html: str) -> list[str]:
    """What the page would load from another host."""
    return [url for url in loaded(html) if _ELSEWHERE.match(url.strip())]
