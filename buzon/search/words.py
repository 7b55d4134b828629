"""What a person typed, read as search terms; and the matched words of a text, highlighted.

Pure functions, the same for every engine. A text is cut into words the way SQLite's FTS5 tokenizer
``unicode61`` cuts it (letters and digits; anything else, ``_`` included, separates), and a word is
compared folded: lower case, accents and other marks removed (``remove_diacritics 2``), so "canción",
"CANCION" and "cancion" are one word. The PostgreSQL index folds with the same table
(``FOLD_FROM``/``FOLD_TO``, built here and written into its SQL function by the migration).

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

from django.utils.html import escape

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


def _matcher(terms: list[Term], stems: tuple[str, ...] = ()) -> tuple[set[str], tuple[str, ...]]:
    exact = {w for t in terms for w in t.words}
    prefixes = tuple(t.words[-1] for t in terms if t.prefix) + tuple(s for s in stems if len(s) >= 3)
    return exact, prefixes


def highlight(text: str, terms: list[Term], *, stems: tuple[str, ...] = (), window: int = SNIPPET_WORDS,
              whole: bool = False) -> tuple[str, int]:
    """HTML of ``text`` (escaped) with the words that match ``terms`` in ``<mark>``: the ``window``
    words around the most matches (or all of it, ``whole``), and how many words matched.

    ``stems``: the engine's stemmed forms of the query words (PostgreSQL's Spanish and English
    dictionaries), so that "facturas" found by "factura" is marked too. Only ``<mark>`` is ever
    added to the escaped text."""
    exact, prefixes = _matcher(terms, stems)
    spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    hits = [i for i, (a, b) in enumerate(spans) if (f := fold(text[a:b])) in exact or
            (prefixes and f.startswith(prefixes))]
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
    for i in range(first, last + 1):
        a, b = spans[i]
        out.append(escape(text[cursor:a]))
        out.append(f"<mark>{escape(text[a:b])}</mark>" if i in marked else escape(text[a:b]))
        cursor = b
    end = spans[last][1]
    tail = text[end:] if last == len(spans) - 1 else ""
    out.append(escape(tail[:40]))
    if last < len(spans) - 1:
        out.append("…")
    return re.sub(r"\s+", " ", "".join(out)).strip(), len(marked)


def fold_table() -> tuple[str, str]:
    """(from, to) for SQL ``translate(lower(text), from, to)``: every letter whose folded form is
    one other letter (capitals too: lower() leaves them alone under the C locale), so PostgreSQL
    folds the index's text as ``fold`` folds the query's words."""
    source, target = [], []
    for code in range(0x80, 0x2000):
        char = chr(code)
        if not char.isalpha():
            continue
        folded = fold(char)
        if len(folded) == 1 and folded != char:
            source.append(char)
            target.append(folded)
    return "".join(source), "".join(target)
