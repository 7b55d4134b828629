# ruff: noqa: S608  # SQL is built from the SOURCES constants' names only; searched text is always a parameter
"""Filling the index from the rows already there (``buzon search_index --rebuild``) and asking it.

The triggers of ``buzon.search.schema`` keep it current; a rebuild is for an index that predates
rows (an installation's first migration), was restored from a backup, or is suspected wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection as default_connection
from django.db import transaction

from buzon.search.schema import BM25_WEIGHTS, SOURCES, Source, postgres_vector
from buzon.search.words import Term, fts5_match, tsquery

#: Rows indexed per statement (and per transaction) by a rebuild.
BATCH = 5000


def supported(connection: Any = None) -> bool:
    return (connection or default_connection).vendor in ("sqlite", "postgresql")


def fill(source: Source, connection: Any = None, *, progress: Callable[[int], None] | None = None) -> int:
    """Index every row of ``source`` again, in batches of ids (rows written meanwhile are indexed
    by the triggers; an entry written twice is replaced). Returns the number of rows indexed."""
    connection = connection or default_connection
    vendor = connection.vendor
    table = source.table_name(vendor)
    cols = ", ".join(source.names)
    if vendor == "sqlite":
        insert = (f"INSERT OR REPLACE INTO {table} (rowid, {cols}) SELECT id, {cols} FROM search_{source.name}_source "  # nosec B608
                  "WHERE id > %s AND id <= %s")
    else:
        insert = (f"INSERT INTO {table} (id, document) SELECT id, {postgres_vector(source)} "  # nosec B608
                  f"FROM search_{source.name}_source WHERE id > %s AND id <= %s "
                  "ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT max(id) FROM {source.table}")  # nosec B608
        top = cursor.fetchone()[0] or 0
    done, low = 0, 0
    while low < top:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(insert, [low, low + BATCH])
            done += max(cursor.rowcount, 0)
        low += BATCH
        if progress is not None:
            progress(done)
    return done


def rebuild(*, progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Empty every source's index and fill it again; how many rows each holds now."""
    counts: dict[str, int] = {}
    if not supported():
        return counts
    vendor = default_connection.vendor
    for source in SOURCES:
        table = source.table_name(vendor)
        with default_connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table}")  # nosec B608
        report: Callable[[int], None] | None = None
        if progress is not None:
            def report(done: int, name: str = source.name) -> None:
                progress(name, done)  # type: ignore[misc]  # checked above
        counts[source.name] = fill(source, progress=report)
        if vendor == "sqlite":
            with default_connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {table} ({table}) VALUES ('optimize')")  # nosec B608
        else:
            with default_connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {table}")
    return counts


@dataclass(frozen=True)
class Hit:
    """The best-matching row of a conversation: its ``source`` (e.g. "message") and id, and its score
    (higher is better; comparable within one search)."""

    conversation_id: int
    score: float
    source: str
    id: int


def best_per_conversation(terms: Sequence[Term], conversations_sql: tuple[str, Sequence[Any]], *,
                          after: tuple[float, int] | None, limit: int) -> list[Hit]:
    """Conversations among ``conversations_sql`` (a SELECT of conversation ids, with its params) with
    a row matching every term, best first (then the higher id), ``limit`` of them after the cursor
    ``after`` (the score and conversation id of the last one of the previous page). One query."""
    if not terms or not supported():
        return []
    vendor = default_connection.vendor
    visible, visible_params = conversations_sql
    parts, params, ctes, cte_params = [], [], [], []
    for source in SOURCES:
        table = source.table_name(vendor)
        if vendor == "sqlite":
            # bm25() is only allowed in a query of the FTS table alone: ranked first (MATERIALIZED,
            # never flattened into the join), then joined to the rows and the visible conversations.
            weights = ", ".join(str(BM25_WEIGHTS[w]) for _, w in source.columns)
            ctes.append(f"{source.name}_hits AS MATERIALIZED (SELECT rowid AS id, -bm25({table}, {weights}) AS score "  # nosec B608
                        f"FROM {table} WHERE {table} MATCH %s)")
            cte_params.append(fts5_match(list(terms)))
            parts.append(
                f"SELECT '{source.name}' AS source, h.id, t.{source.conversation} AS cid, h.score "  # nosec B608
                f"FROM {source.name}_hits h JOIN {source.table} t ON t.id = h.id "
                f"WHERE t.{source.conversation} IN ({visible})")
            params += list(visible_params)
        else:
            parts.append(
                f"SELECT '{source.name}' AS source, d.id, t.{source.conversation} AS cid, "  # nosec B608
                f"ts_rank(d.document, query.q)::float8 AS score FROM {table} d "
                f"JOIN {source.table} t ON t.id = d.id CROSS JOIN query "
                f"WHERE d.document @@ query.q AND t.{source.conversation} IN ({visible})")
            params += list(visible_params)
    hits = " UNION ALL ".join(parts)
    page = "WHERE score < %s OR (score = %s AND cid < %s)" if after else ""
    page_params = [after[0], after[0], after[1]] if after else []
    if vendor == "sqlite":
        # SQLite: the bare columns of a MAX() aggregate come from the row that has the maximum.
        params = [*cte_params, *params]
        sql = (f"WITH {', '.join(ctes)}, hits AS ({hits}), "  # nosec B608
               "best AS (SELECT cid, MAX(score) AS score, source, id FROM hits GROUP BY cid) "
               f"SELECT cid, score, source, id FROM best {page} ORDER BY score DESC, cid DESC LIMIT %s")
    else:
        text = tsquery(list(terms))
        sql = (f"WITH query AS (SELECT to_tsquery('spanish', %s) || to_tsquery('english', %s) AS q), "  # nosec B608
               f"hits AS ({hits}), best AS (SELECT DISTINCT ON (cid) cid, score, source, id FROM hits "
               f"ORDER BY cid, score DESC, id DESC) "
               f"SELECT cid, score, source, id FROM best {page} ORDER BY score DESC, cid DESC LIMIT %s")
        params = [text, text, *params]
    with default_connection.cursor() as cursor:
        cursor.execute(sql, [*params, *page_params, limit])
        return [Hit(int(cid), float(score), str(source), int(pk)) for cid, score, source, pk in cursor.fetchall()]


def source_rows(hits: Sequence[Hit]) -> dict[tuple[str, int], dict[str, str]]:
    """The text columns of each hit's row (from its source's view): what its snippet is cut from.
    One query per source that has hits."""
    found: dict[tuple[str, int], dict[str, str]] = {}
    for source in SOURCES:
        ids = [hit.id for hit in hits if hit.source == source.name]
        if not ids:
            continue
        marks = ", ".join(["%s"] * len(ids))
        with default_connection.cursor() as cursor:
            cursor.execute(f"SELECT id, {', '.join(source.names)} FROM search_{source.name}_source "  # nosec B608
                           f"WHERE id IN ({marks})", ids)
            for row in cursor.fetchall():
                found[(source.name, int(row[0]))] = dict(zip(source.names, (v or "" for v in row[1:]), strict=True))
    return found


def stems(terms: Sequence[Term]) -> tuple[str, ...]:
    """PostgreSQL's Spanish and English stems of the query's words (so highlighting marks "facturas"
    found by "factura"); none elsewhere (SQLite matches words as typed)."""
    if default_connection.vendor != "postgresql" or not terms:
        return ()
    text = " ".join(w for t in terms for w in t.words)
    with default_connection.cursor() as cursor:
        cursor.execute("SELECT tsvector_to_array(to_tsvector('spanish', search_fold(%s)) "
                       "|| to_tsvector('english', search_fold(%s)))", [text, text])
        return tuple(cursor.fetchone()[0] or ())
