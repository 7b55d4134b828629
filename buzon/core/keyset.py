"""Keyset pages for every list that grows: rows in the order of an index, (``field`` desc, id desc),
or ascending for a list read alphabetically (accounts by address, people by username), and a page
continues from a cursor (the last row's value and id), never from an offset, and nothing counts the
table. Page 1,000 costs what page 1 costs; the index that serves a list's filter must end in
(field, id) for the page to be a range scan. A list the role rule cuts by several terms (a store, an
agent group, the agent: crm.roles.terms) reads each term's page from its own such index and merges
their ids (``merged_sql``), then reads those rows by id: two queries, never a sort of every row the
rule lets someone see.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import F, Model, Q, QuerySet
from django.utils.dateparse import parse_datetime

M = TypeVar("M", bound=Model)
PAGE_SIZE = 50


#: The largest id a database integer column holds: a bigger number is no row's (and would not bind).
MAX_ID = 2**63 - 1


def moment(text: str) -> dt.datetime | None:
    """An ISO 8601 moment as a page or a client sends it back ("+" arrives as " " in a query), or
    None when it is not one, a well-formed but impossible date included (month 13)."""
    try:
        parsed = parse_datetime(str(text).strip().replace(" ", "+")) if str(text).strip() else None
        # The database shifts an aware moment to UTC, and callers step a little back from it
        # (live updates): a forged year 1 or 9999 must be refused here, not overflow there.
        shifted = parsed.astimezone(dt.UTC) if parsed is not None and parsed.tzinfo is not None else parsed
    except (ValueError, OverflowError):
        return None
    if shifted is None or not dt.MINYEAR < shifted.year < dt.MAXYEAR:
        return None
    return parsed


def number(text: Any) -> int | None:
    """A row id as a request gives it, or None when it is not one (not digits, or too big for a column)."""
    value = str(text).strip()
    return int(value) if value.isdigit() and int(value) <= MAX_ID else None


class BadCursor(ValueError):
    """A cursor this list did not give (edited by hand, or of another list)."""


@dataclass(frozen=True)
class Cursor:
    value: Any  # a datetime or an int: the ordering field of the row it was taken from
    pk: int

    def __str__(self) -> str:
        value = self.value.isoformat() if isinstance(self.value, dt.datetime) else str(self.value)
        return f"{value}~{self.pk}"

    @classmethod
    def parse(cls, text: str, *, kind: type = dt.datetime) -> Cursor:
        value_text, _, pk_text = str(text).rpartition("~")
        value: Any = None
        if kind is dt.datetime:
            value = moment(value_text)
        elif kind is str:
            # Any text (an address may hold "~": the id is after the last one), but never a NUL,
            # which PostgreSQL refuses to bind (a 500 instead of a clean 400).
            value = value_text if value_text and "\x00" not in value_text else None
        elif value_text.lstrip("-").isdigit() and abs(int(value_text)) <= MAX_ID:
            value = int(value_text)
        if value is None or number(pk_text) is None:
            raise BadCursor("Not a cursor this list gave.")
        return cls(value, int(pk_text))


@dataclass
class Page(Generic[M]):
    rows: Sequence[M]
    newer: Cursor | None  # the cursor of the page before (rows nearer the top), if there is one
    older: Cursor | None  # the cursor of the next page, if there is one


def _value(row: Model, field: str) -> Any:
    """``field`` of ``row``, following a path through related rows (``user__username``)."""
    value: Any = row
    for part in field.split("__"):
        value = getattr(value, part)
    return value


def merged_sql(rows: QuerySet[M], terms: Sequence[Q], field: str, order: Sequence[str],
               limit: int) -> tuple[str, list[Any]]:
    """The SQL of the ids of the first ``limit`` rows in ``order`` of ``rows`` (cut to those any of
    ``terms`` selects: the role rule's terms, crm.roles), each term's read in that order from the
    index its columns start and the lot merged. Given the terms' OR instead, a planner gathers every
    row it selects and sorts them (SQLite's multi-index OR, PostgreSQL's BitmapOr)."""
    parts: list[str] = []
    params: list[Any] = []
    for i, term in enumerate(terms):
        try:
            sql, term_params = (rows.filter(term).order_by(*order).values(keyset_id=F("pk"), keyset_at=F(field))
                                [:limit].query.sql_with_params())
        except EmptyResultSet:
            continue
        # Django compiled ``sql`` (every value in it is a parameter); the names are the model's own.
        parts.append(f"SELECT * FROM ({sql}) AS term{i}")  # noqa: S608  # nosec B608
        params.extend(term_params)
    if not parts:
        return "", []
    by = ", ".join(f"keyset_{'at' if name.lstrip('-') == field else 'id'} {'DESC' if name.startswith('-') else 'ASC'}"
                   for name in order)
    return (f"SELECT DISTINCT keyset_id, keyset_at FROM ({' UNION ALL '.join(parts)}) AS terms "  # noqa: S608  # nosec B608
            f"ORDER BY {by} LIMIT {int(limit)}", params)


def _fetch(rows: QuerySet[M], terms: Sequence[Q] | None, field: str, order: Sequence[str], limit: int) -> list[M]:
    """The first ``limit`` of ``rows`` in ``order``: one query; with several ``terms``, two (their
    ids merged, ``merged_sql``, then those rows by id, whatever conditions ``rows`` had: the ids'
    query applied them all, and the rows' query then has nothing to plan but the ids)."""
    if terms is None or len(terms) < 2 or "__" in field:
        return list(rows.order_by(*order)[:limit])
    sql, params = merged_sql(rows, terms, field, order, limit)
    if not sql:
        return []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    by_ids = rows.all()
    by_ids.query.clear_where()
    by_ids.query.clear_ordering(force=True)
    found = {row.pk: row for row in by_ids.filter(pk__in=ids)}
    return [found[pk] for pk in ids if pk in found]


def page(rows: QuerySet[M], *, field: str, before: str = "", after: str = "", size: int = PAGE_SIZE,
         kind: type = dt.datetime, descending: bool = True, terms: Sequence[Q] | None = None) -> Page[M]:
    """A page of ``rows`` in (``field``, id) order, newest (largest) first unless not ``descending``:
    from the top, ``before`` a cursor (the rows after it in the list) or ``after`` one (the rows
    before it, nearer the top). Rows whose ``field`` is null are not listed. ``terms``: those the
    role rule cut ``rows`` with (crm.roles.terms), each read from its own index (``merged_sql``)."""
    def cursor(row: M) -> Cursor:
        return Cursor(_value(row, field), row.pk)

    onward, back = ("lt", "gt") if descending else ("gt", "lt")
    down = (f"-{field}", "-pk") if descending else (field, "pk")
    up = (field, "pk") if descending else (f"-{field}", "-pk")

    def past(at: Cursor, way: str) -> Q:
        beyond = Q(**{f"{field}__{way}": at.value}) | Q(**{field: at.value, f"pk__{way}": at.pk})
        # Nothing the OR does not say, but the bound an index range starts at. Without it PostgreSQL
        # reads a deep page's index from the top (28 ms instead of 3 at 100,000 messages), and SQLite,
        # its values bound as parameters and its statistics gathered, reads both sides of the OR
        # through the index and sorts them (a multi-index OR: 460 ms instead of 1 at 1,000,000).
        return Q(**{f"{field}__{way}e": at.value}) & beyond

    rows = rows.filter(**{f"{field}__isnull": False})
    if after:
        at = Cursor.parse(after, kind=kind)
        found = _fetch(rows.filter(past(at, back)), terms, field, up, size + 1)
        more_above = len(found) > size
        found = list(reversed(found[:size]))
        return Page(found, cursor(found[0]) if found and more_above else None, cursor(found[-1]) if found else None)
    if before:
        at = Cursor.parse(before, kind=kind)
        rows = rows.filter(past(at, onward))
    found = _fetch(rows, terms, field, down, size + 1)
    more_below = len(found) > size
    found = found[:size]
    return Page(found, cursor(found[0]) if found and before else None,
                cursor(found[-1]) if found and more_below else None)
