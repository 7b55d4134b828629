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

from django.db import connection
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

from buzon.search import index, ranking
from buzon.search.ranking import BadCursor
from buzon.search.schema import MESSAGES
from buzon.search.words import Term, fts5_match, highlight, parse, tsquery

if TYPE_CHECKING:
    from django.db.models import QuerySet

__all__ = ["BadCursor", "Found", "Result", "find", "message_condition", "parse", "rebuild"]

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


#: A word with at most this many matching messages is looked up by their ids; a commoner one is
#: checked row by row as a list reads its newest rows (it finds a page in its first few hundred).
FEW_MESSAGES = 5000


def message_condition(text: str) -> Q:
    """A condition on messages (``Message.objects.filter(...)``): those whose indexed fields (subject,
    text, sender, customer, attachment names) hold every word of ``text``, read from the full-text
    index rather than by reading each message's text (a substring filter read all of them: 1 s for
    a rare word at 1,000,000 messages). One query asks the index for at most FEW_MESSAGES + 1
    matches: that few are the condition's ids; more, and each row the list reads is checked in the
    index (listing every match of a common word first took 1-1.5 s). No word: every message."""
    terms = parse(text)
    if not terms or not index.supported():
        return Q()
    sqlite = connection.vendor == "sqlite"
    table = MESSAGES.table_name(connection.vendor)
    if sqlite:
        match, params = f"{table} MATCH %s", [fts5_match(terms)]
        key = "rowid"
    else:
        match = f"document @@ {ranking.TSQUERY}"
        params = [tsquery(terms)] * 2
        key = "id"
    common = FEW_MESSAGES <= ranking.SCAN and ranking.known_common(MESSAGES, params[0])  # asked before (PostgreSQL)
    if not common:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {key} FROM {table} WHERE {match} LIMIT {FEW_MESSAGES + 1}", params)  # noqa: S608  # nosec B608  # the index's own names
            ids = [row[0] for row in cursor.fetchall()]
        if len(ids) <= FEW_MESSAGES:
            return Q(pk__in=ids)
        if not sqlite and len(ids) > ranking.SCAN:
            ranking.remember_common(MESSAGES, params[0])  # the search's question, answered: a common word
    checked = f"EXISTS (SELECT 1 FROM {table} WHERE {key} = {MESSAGES.table}.id AND {match})"  # noqa: S608  # nosec B608
    return Q(RawSQL(checked, params, output_field=BooleanField()))  # noqa: S611  # nosec B611  # names above; words are parameters


def rebuild(**options: Any) -> dict[str, int]:
    """Empty the index and fill it again from every row (``buzon search_index --rebuild``)."""
    return index.rebuild(**options)
