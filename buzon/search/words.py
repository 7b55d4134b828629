"""What a person typed, read as search terms; and the matched words of a text, highlighted.

Pure functions, the same for every engine. A text is cut into words the way SQLite's FTS5 tokenizer
``unicode61`` cuts it (letters and digits; anything else, ``_`` included, separates), and a word is
compared folded: lower case, accents and other marks removed (``remove_diacritics 2``), so "canción",
"CANCION" and "cancion" are one word. The PostgreSQL index folds the same way (NFKD, the same marks
removed: ``combining_marks``, written into its SQL function by the migration).

The syntax people use in a search box works and nothing they type is an error: words must all be
there (in any field), ``"a phrase"`` must be there in that order, ``word*`` finds words starting
with it. Anything else (a lone quote, ``*``, ``-``, ``OR``, parentheses, ``:``) is only a
separator: the user's words are never passed to an engine's query syntax as they were typed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from html import escape  # Django's escape is this, behind a lazy-string wrapper that costs more than the work

_WORD = re.compile(r"[^\W_]+")
#: A query longer than this is cut (a pasted message is not a search).
MAX_QUERY_CHARS = 500
#: At most this many terms count; more are dropped (each costs the engine a lookup).
MAX_TERMS = 12
#: Shortest stem of a prefix query (``a*`` would match half the index): shorter ones are whole words.
MIN_PREFIX = 2


@lru_cache(maxsize=4096)
def fold(word: str) -> str:
    """``word`` lower-cased with its accents and marks removed ("Peña" -> "pena")."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    return _WORD.findall(text)


@dataclass(frozen=True)
class Term:
    """Folded words that must appear in this order (one word, or a phrase); ``prefix``: the last
    word may be the start of a longer one."""

    words: tuple[str, ...]
    prefix: bool = False


def parse(text: str) -> list[Term]:
    """The terms of a search box's text ("" or only punctuation: no terms, search nothing)."""
    text = text[:MAX_QUERY_CHARS]
    terms: list[Term] = []
    # Quoted phrases first (a quote left open runs to the end), then the words between them.
    for quoted, plain in re.findall(r'"([^"]*)"?|([^"]+)', text):
        if quoted:
            found = tuple(fold(w) for w in words(quoted))
            if found:
                terms.append(Term(found))
            continue
        for chunk in plain.split():
            prefix = chunk.endswith("*")
            found = tuple(fold(w) for w in words(chunk))
            if not found or [w.upper() for w in words(chunk)] in (["AND"], ["OR"], ["NOT"], ["NEAR"]):
                continue
            terms.append(Term(found, prefix=prefix and len(found[-1]) >= MIN_PREFIX))
    unique = list(dict.fromkeys(terms))
    return unique[:MAX_TERMS]


def fts5_match(terms: list[Term]) -> str:
    """An FTS5 MATCH expression for ``terms``: each a quoted string (a phrase), all required.
    Words hold only letters and digits, so nothing in them is FTS5 syntax."""
    return " ".join(f'"{" ".join(t.words)}"' + ("*" if t.prefix else "") for t in terms)


def tsquery(terms: list[Term]) -> str:
    """A PostgreSQL to_tsquery() text for ``terms``: phrases with ``<->``, prefixes with ``:*``."""
    parts = []
    for term in terms:
        chain = [f"'{w}'" for w in term.words]
        if term.prefix:
            chain[-1] += ":*"
        parts.append("(" + " <-> ".join(chain) + ")" if len(chain) > 1 else chain[0])
    return " & ".join(parts)


# -- Highlighting -----------------------------------------------------------------------------

#: Words shown around the matches in a snippet.
SNIPPET_WORDS = 30


def _matcher(terms: list[Term], stems: tuple[str, ...] = ()) -> tuple[frozenset[str], tuple[str, ...]]:
    exact = frozenset(w for t in terms for w in t.words)
    prefixes = tuple(t.words[-1] for t in terms if t.prefix) + tuple(s for s in stems if len(s) >= 3)
    return exact, prefixes


@lru_cache(maxsize=1)
def _folding() -> tuple[dict[str, str], re.Pattern[str]]:
    """For each folded letter, a regular-expression class of the letters that fold to it alone
    ("e": ``[EeÈÉÊËèéêë…]``), over the Basic Multilingual Plane; and the characters that do not fold
    to one letter of their kind ("ß", ligatures, marks, other planes): a text holding one is folded
    word by word instead. Built once (about 0.1 s)."""
    variants: dict[str, list[str]] = {}
    irregular: list[str] = []
    for code in range(0x41, 0x10000):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue
        folded = fold(char)
        if folded == char:
            continue
        if len(folded) == 1 and folded.isalnum() == char.isalnum():
            variants.setdefault(folded, [folded]).append(char)
        else:
            irregular.append(re.escape(char))
    classes = {f: "[" + "".join(re.escape(c) for c in chars) + "]" for f, chars in variants.items()}
    return classes, re.compile("[" + "".join(irregular) + "\\U00010000-\\U0010ffff]")


@lru_cache(maxsize=256)
def _pattern(exact: frozenset[str], prefixes: tuple[str, ...]) -> re.Pattern[str]:
    classes = _folding()[0]

    def spelled(word: str) -> str:
        return "".join(classes.get(c, re.escape(c)) for c in word)

    # Prefixes first (a prefix takes its whole word), then whole words, longest first: a hit is
    # kept only if it ends a word, so at each place the longest that can is tried first.
    alternatives = [spelled(p) + r"[^\W_]*" for p in prefixes]
    alternatives += [spelled(w) for w in sorted(exact, key=len, reverse=True)]
    return re.compile("|".join(alternatives))


def _marks(text: str, exact: frozenset[str], prefixes: tuple[str, ...]) -> list[tuple[int, int]]:
    """Where the words of ``text`` that match are: one regular-expression search of the text for
    the query's words in any case and accents (C speed, whatever its length), each hit kept if it is
    a whole word; or word by word, where the text holds a letter that does not fold alone."""
    if not exact and not prefixes:
        return []
    if _folding()[1].search(text):
        return [m.span() for m in _WORD.finditer(text)
                if (f := fold(m.group())) in exact or (prefixes and f.startswith(prefixes))]
    found = []
    for match in _pattern(exact, prefixes).finditer(text):
        a, b = match.span()
        # A word is letters and digits ([^\W_], str.isalnum): a hit inside a longer word is not one.
        if (a == 0 or not text[a - 1].isalnum()) and (b == len(text) or not text[b].isalnum()):
            found.append((a, b))
    return found


#: A text longer than this is cut around its best match before its words are laid out.
_REGION_CHARS = 1500


def highlight(text: str, terms: list[Term], *, stems: tuple[str, ...] = (), window: int = SNIPPET_WORDS,
              whole: bool = False) -> tuple[str, int]:
    """HTML of ``text`` (escaped) with the words that match ``terms`` in ``<mark>``: the ``window``
    words around the most matches (or all of it, ``whole``), and how many words matched.

    ``stems``: the engine's stemmed forms of the query words (PostgreSQL's Spanish and English
    dictionaries), so that "facturas" found by "factura" is marked too. Only ``<mark>`` is ever
    added to the escaped text. The cost grows with the words shown, not with the text: a long
    message is searched for its matches at C speed and only the part around the best is laid out."""
    exact, prefixes = _matcher(terms, stems)
    marks = _marks(text, exact, prefixes)
    before = after = False  # the text goes on before / after the part laid out
    if not whole and len(text) > _REGION_CHARS:
        # The region around the densest run of matches (about ``window`` words of 8 characters).
        best, start, j = 0, 0, 0
        for i, (a, _) in enumerate(marks):
            while marks[j][0] < a - window * 8:
                j += 1
            if i - j + 1 > best:
                best, start = i - j + 1, marks[j][0]
        low = max(0, start - 200)
        high = min(len(text), low + _REGION_CHARS)
        low = max(0, high - _REGION_CHARS)
        # Cut at spaces, so no word is split (a word longer than the region is cut anyway).
        if low > 0:
            low = next((m.end() for m in re.finditer(r"\s", text[low:low + 100])), 0) + low
        if high < len(text):
            high = max(low, text.rfind(" ", low, high))
        before, after = low > 0, high < len(text)
        marks = [(a - low, b - low) for a, b in marks if a >= low and b <= high]
        text = text[low:high]
    html, marked = _lay_out(text, {a for a, _ in marks}, window=window, whole=whole)
    return ("…" if before and not html.startswith("…") else "") + html + (
        "…" if after and not html.endswith("…") else ""), marked


def _lay_out(text: str, marked_at: set[int], *, window: int, whole: bool) -> tuple[str, int]:
    spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    hits = [i for i, (a, _) in enumerate(spans) if a in marked_at]
    if not spans:
        return escape(text[:300]), 0
    if whole or len(spans) <= window:
        first, last = 0, len(spans) - 1
    else:
        # The window with the most marked words (the first such), then centred a little before it.
        best, start, j = 0, 0, 0
        for i, hit in enumerate(hits):
            while hits[j] < hit - window + 1:
                j += 1
            if i - j + 1 > best:
                best, start = i - j + 1, hits[j]
        first = max(0, start - 5) if hits else 0
        last = min(len(spans) - 1, first + window - 1)
        first = max(0, last - window + 1)
    marked = set(hits)
    out = ["…" if first > 0 else ""]
    cursor = spans[first][0] if first > 0 else 0
    for i in hits:  # the text between marked words escaped in one piece
        if first <= i <= last:
            a, b = spans[i]
            out.append(f"{escape(text[cursor:a])}<mark>{escape(text[a:b])}</mark>")
            cursor = b
    end = spans[last][1]
    tail = text[end:][:40] if last == len(spans) - 1 else ""
    out.append(escape(text[cursor:end] + tail))
    if last < len(spans) - 1:
        out.append("…")
    return re.sub(r"\s+", " ", "".join(out)).strip(), len(marked)


def combining_marks() -> str:
    """A regular-expression bracket of every character ``fold`` removes after NFKD (those with a
    combining class), for PostgreSQL's ``regexp_replace``: its ``search_fold`` folds the index's text
    as ``fold`` folds the query's words, with ``normalize(NFKD)`` (C code) instead of a letter table
    (``translate`` over a table of a thousand letters cost 12 ms per message of 2 KB)."""
    ranges: list[tuple[int, int]] = []
    for code in range(0x110000):
        if unicodedata.combining(chr(code)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))

    def char(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"

    return "[" + "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in ranges) + "]"
