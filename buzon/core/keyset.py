"""Keyset pages for every list that grows: rows in the order of an index, (``field`` desc, id desc),
or ascending for a list read alphabetically (accounts by address, people by username), and a page
continues from a cursor (the last row's value and id), never from an offset, and nothing counts the
table. Page 1,000 costs what page 1 costs; the index that serves a list's filter must end in
(field, id) for the page to be a range scan.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db.models import Model, Q, QuerySet
from django.utils.dateparse import parse_datetime

M = TypeVar("M", bound=Model)
PAGE_SIZE = 50


#: The largest id a database integer column holds: a bigger number is no row's (and would not bind).
MAX_ID = 2**63 - 1


def moment(text: str) -> dt.datetime | None:
    """An ISO 8601 moment as a page or a client sends it back ("+" arrives as " " in a query), or
    None when it is not one, a well-formed but impossible date included (month 13)."""
    try:
        return parse_datetime(str(text).strip().replace(" ", "+")) if str(text).strip() else None
    except ValueError:
        return None


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


def page(rows: QuerySet[M], *, field: str, before: str = "", after: str = "", size: int = PAGE_SIZE,
         kind: type = dt.datetime, descending: bool = True) -> Page[M]:
    """A page of ``rows`` in (``field``, id) order, newest (largest) first unless not ``descending``:
    from the top, ``before`` a cursor (the rows after it in the list) or ``after`` one (the rows
    before it, nearer the top). Rows whose ``field`` is null are not listed."""
    def cursor(row: M) -> Cursor:
        return Cursor(_value(row, field), row.pk)

    onward, back = ("lt", "gt") if descending else ("gt", "lt")
    down = (f"-{field}", "-pk") if descending else (field, "pk")
    up = (field, "pk") if descending else (f"-{field}", "-pk")

    def past(at: Cursor, way: str) -> Q:
        return Q(**{f"{field}__{way}": at.value}) | Q(**{field: at.value, f"pk__{way}": at.pk})

    rows = rows.filter(**{f"{field}__isnull": False})
    if after:
        at = Cursor.parse(after, kind=kind)
        found = list(rows.filter(past(at, back)).order_by(*up)[:size + 1])
        more_above = len(found) > size
        found = list(reversed(found[:size]))
        return Page(found, cursor(found[0]) if found and more_above else None, cursor(found[-1]) if found else None)
    if before:
        at = Cursor.parse(before, kind=kind)
        rows = rows.filter(past(at, onward))
    found = list(rows.order_by(*down)[:size + 1])
    more_below = len(found) > size
    found = found[:size]
    return Page(found, cursor(found[0]) if found and before else None,
                cursor(found[-1]) if found and more_below else None)
