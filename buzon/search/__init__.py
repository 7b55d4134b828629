"""Full-text search of the mail in the workspace: the one interface (``find``, ``rebuild``).

What a search looks in: each message's subject, text, sender (name and address), customer name
and attachment names (``buzon.search.schema.SOURCES``; internal notes are one more source). The
database's own engine answers: SQLite's FTS5 on the default install, PostgreSQL's full-text search
(Spanish and English stemming, GIN index) on PostgreSQL; triggers keep the index current in the
same transaction as the rows. A site that outgrows them (see docs/operations.md) replaces this
package's insides with a dedicated engine; its callers do not change.

Who may see what is not decided here: ``find`` searches only among the conversations it is given,
which the workspace cuts by the role rule (buzon.workspace.searching).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from buzon.search import index, ranking
from buzon.search.ranking import BadCursor
from buzon.search.words import Term, highlight, parse

if TYPE_CHECKING:
    from django.db.models import QuerySet

__all__ = ["BadCursor", "Found", "Result", "find", "parse", "rebuild"]

PAGE_SIZE = 50
#: Where a snippet is cut from, in order: the first field with a matched word.
SNIPPET_FIELDS = ("body", "subject", "attachments", "sender", "customer")


@dataclass(frozen=True)
class Result:
    """A conversation that matched: its best row (``source``, ``id``) and that row's ``snippet`` (safe
    HTML: the text escaped, matched words in ``<mark>``), cut from ``field``."""

    conversation_id: int
    score: float
    source: str
    id: int
    snippet: str
    field: str


@dataclass(frozen=True)
class Found:
    results: list[Result]
    next: str | None  # the cursor of the next page, if there is one
    terms: list[Term]


def find(conversations: QuerySet[Any], text: str, *, cursor: str = "", limit: int = PAGE_SIZE) -> Found:
    """The conversations among ``conversations`` whose mail matches ``text``, best first among the
    newest matches (``buzon.search.ranking``: every match of a rarer word), ``limit`` a page from
    ``cursor`` (the previous page's ``next``; BadCursor if it is not one). ``conversations`` is
    applied as a condition on each match's conversation row, in the same statement. Text with no
    word finds nothing; no syntax is an error. A constant number of queries, whatever the page holds."""
    position = ranking.Position.parse(cursor)
    terms = parse(text)
    if not terms:
        return Found([], None, terms)
    hits, after = ranking.page(terms, conversations, position, limit)
    rows, stems = index.source_rows(hits, terms)
    results = []
    for hit in hits:
        row = rows.get((hit.source, hit.id), {})
        snippet, field = "", ""
        for name in (f for f in SNIPPET_FIELDS if f in row):
            html, marked = highlight(row[name], terms, stems=stems)
            if marked:
                snippet, field = html, name
                break
        if not field and row:  # matched through a stem or a field not shown: the start of the text
            field = "body" if row.get("body") else next(iter(row))
            snippet = highlight(row[field], terms, stems=stems)[0]
        results.append(Result(hit.conversation_id, hit.score, hit.source, hit.id, snippet, field))
    return Found(results, after.text() if after is not None else None, terms)


def rebuild(**options: Any) -> dict[str, int]:
    """Empty the index and fill it again from every row (``buzon search_index --rebuild``)."""
    return index.rebuild(**options)
