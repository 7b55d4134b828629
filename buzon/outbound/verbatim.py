"""Header values written exactly as given: folded at whitespace, never turned into RFC 2047 words.

The email package re-folds any header line over 78 characters through its header parser, and that
parser encodes a word it cannot break (a long URL, a long Message-ID) as `=?utf-8?q?...?=`. For
text that is harmless (clients decode it), but a List-Unsubscribe URL or a Message-ID in
References is a token, not text: encoded, no client finds the one-click unsubscribe (RFC 8058) or
threads the reply. RFC 5322 2.2.3 folds at whitespace only, and an unbreakable token may stay
whole on a longer line, up to the 998 characters of 2.1.1; that is what these values do.
"""

from __future__ import annotations

from typing import Any

SOFT_LIMIT = 78  # RFC 5322 2.1.1: SHOULD
HARD_LIMIT = 998  # RFC 5322 2.1.1: MUST


class Verbatim(str):
    """A header value the email package stores and writes as is (it calls `fold()` on values that
    have a `name`), folded between its words: after the commas of a list (`<a>, <b>`), between
    the ids of References."""

    name: str

    def __new__(cls, name: str, value: str) -> Verbatim:
        # Line breaks (and runs of spaces) become single spaces: no header can be injected.
        self = super().__new__(cls, " ".join(value.split()))
        self.name = name
        return self

    def fold(self, *, policy: Any) -> str:
        lines = [f"{self.name}:"]
        for word in self.split(" "):
            if len(lines[-1]) + 1 + len(word) > SOFT_LIMIT and lines[-1].strip() not in ("", f"{self.name}:"):
                lines.append("")
            lines[-1] += " " + word
        return str(policy.linesep).join(lines) + str(policy.linesep)


def fits(name: str, value: str) -> bool:
    """True when `value` can be written verbatim: ASCII, and no word too long for any line."""
    return value.isascii() and all(len(word) + len(name) + 2 <= HARD_LIMIT for word in value.split())
