"""Keyset pages for every list that grows: rows in the order of an index, (``field`` desc, id desc),
and a page continues from a cursor (the last row's value and id), never from an offset, and nothing
counts the table. Page 1,000 costs what page 1 costs; the index that serves a list's filter must end
in (field, id) for the page to be a range scan.
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


def page(rows: QuerySet[M], *, field: str, before: str = "", after: str = "", size: int = PAGE_SIZE,
         kind: type = dt.datetime) -> Page[M]:
    """A page of ``rows`` newest ``field`` first: from the top, ``before`` a cursor (the older rows
    after it) or ``after`` one (the newer rows before it). Rows whose ``field`` is null are not listed."""
    def cursor(row: M) -> Cursor:
        return Cursor(getattr(row, field), row.pk)

    rows = rows.filter(**{f"{field}__isnull": False})
    if after:
        at = Cursor.parse(after, kind=kind)
        newer = Q(**{f"{field}__gt": at.value}) | Q(**{field: at.value, "pk__gt": at.pk})
        found = list(rows.filter(newer).order_by(field, "pk")[:size + 1])
        more_newer = len(found) > size
        found = list(reversed(found[:size]))
        return Page(found, cursor(found[0]) if found and more_newer else None, cursor(found[-1]) if found else None)
    if before:
        at = Cursor.parse(before, kind=kind)
        rows = rows.filter(Q(**{f"{field}__lt": at.value}) | Q(**{field: at.value, "pk__lt": at.pk}))
    found = list(rows.order_by(f"-{field}", "-pk")[:size + 1])
    more_older = len(found) > size
    found = found[:size]
    return Page(found, cursor(found[0]) if found and before else None,
                cursor(found[-1]) if found and more_older else None)
