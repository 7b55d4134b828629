# ruff: noqa: S608  # SQL is built from the SOURCES constants' names only; searched text is always a parameter
"""Filling the index from the rows already there (``buzon search_index --rebuild``), and the text of
the rows a search found (``buzon.search.ranking`` finds them).

The triggers of ``buzon.search.schema`` keep it current; a rebuild is for an index that predates
rows (an installation's first migration), was restored from a backup, or is suspected wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection as default_connection
from django.db import transaction

from buzon.search.ranking import Hit
from buzon.search.schema import SOURCES, Source, postgres_select, postgres_stems
from buzon.search.words import Term

#: Rows indexed per statement (and per transaction) by a rebuild.
BATCH = 5000


def supported(connection: Any = None) -> bool:
    return (connection or default_connection).vendor in ("sqlite", "postgresql")


def fill(source: Source, connection: Any = None, *, progress: Callable[[int], None] | None = None,
         after: int = 0, until: int | None = None) -> int:
    """Index every row of ``source`` again (those with ids in ``(after, until]``, by default all), in
    batches of ids (rows written meanwhile are indexed by the triggers; an entry written twice is
    replaced). Returns the number of rows indexed."""
    connection = connection or default_connection
    vendor = connection.vendor
    table = source.table_name(vendor)
    cols = ", ".join(source.names)
    if vendor == "sqlite":
        insert = (f"INSERT OR REPLACE INTO {table} (rowid, {cols}) SELECT id, {cols} FROM search_{source.name}_source "  # nosec B608
                  "WHERE id > %s AND id <= %s")
    else:
        insert = (f"INSERT INTO {table} (id, document) {postgres_select(source)} "  # nosec B608
                  "WHERE s.id > %s AND s.id <= %s "
                  "ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document")
    top = until
    if top is None:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT max(id) FROM {source.table}")  # nosec B608
            top = cursor.fetchone()[0] or 0
    done, low = 0, after
    while low < top:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(insert, [low, min(top, low + BATCH)])
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


Rows = dict[tuple[str, int], dict[str, str]]


def source_rows(hits: Sequence[Hit], terms: Sequence[Term] = ()) -> tuple[Rows, tuple[str, ...]]:
    """The text columns of each hit's row (from its source's view), what its snippet is cut from, and
    on PostgreSQL the Spanish and English stems of the query's words (so highlighting marks
    "facturas" found by "factura"; SQLite matches words as typed): one statement, none without hits."""
    asked = [(source, [hit.id for hit in hits if hit.source == source.name]) for source in SOURCES]
    asked = [(source, ids) for source, ids in asked if ids]
    if not asked:
        return {}, ()
    width = max(len(source.names) for source in SOURCES)
    postgres = default_connection.vendor == "postgresql"
    parts: list[str] = []
    params: list[Any] = []
    for source, ids in asked:
        padding = ["NULL"] * (width - len(source.names))
        marks = ", ".join(["%s"] * len(ids))
        parts.append(f"SELECT '{source.name}', id, {', '.join([*source.names, *padding])} "  # nosec B608
                     f"FROM search_{source.name}_source WHERE id IN ({marks})")
        params += ids
    text = " ".join(w for t in terms for w in t.words)
    if postgres and text:
        padding = ["NULL"] * (width - 1)
        query_stems = postgres_stems("search_fold(%s)")  # its two %s: the text, twice
        parts.append(f"SELECT '#stems', NULL, array_to_string(tsvector_to_array({query_stems}), ' '), "
                     f"{', '.join(padding)}")
        params += [text, text]
    found: Rows = {}
    stems: tuple[str, ...] = ()
    names = {source.name: source.names for source in SOURCES}
    with default_connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        for name, pk, *values in cursor.fetchall():
            if name == "#stems":
                stems = tuple((values[0] or "").split())
                continue
            columns = names[name]
            found[(name, int(pk))] = dict(zip(columns, (v or "" for v in values[:len(columns)]), strict=True))
    return found, stems
