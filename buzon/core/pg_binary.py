"""Mail-sized bytes, and rows sent as arrays, to and from PostgreSQL in binary format.

Django's PostgreSQL cursors bind parameters on the client (psycopg's ClientCursor): a bytea value
is written into the query's text hex-escaped, twice its size, for the server to parse back; and
results come as text, where a bytea value is hex again, for psycopg to decode. For raw mail (tens
of KB a message, megabytes with files) that is most of the cost of storing and reading it:
inserting 37 MB of raw mail took 0.65 s that way and 0.2-0.27 s bound on the server, and reading
148 MB back 0.77 s as text and 0.4 s as binary (psycopg 3.3, PostgreSQL 15, loopback). Rows
written together as one array per column (``buzon.sync.fastinsert.unnest_sql``) cost the same way:
psycopg writes each array's literal in Python, a timestamp at a time (24 arrays of 100 rows: 4.6 ms
as text literals, 0.8 ms in binary format).

``binary_cursor`` is Django's cursor (its error wrapping, query logging and transaction) whose
psycopg cursor binds on the server (Django's own ServerBindingCursor, what its
``server_side_binding`` option uses for every query): a parameter marked ``%b`` is sent in binary
format, bytes as they are.
``stream`` reads rows one at a time with results in binary format: the bytes as they are, and no
more than one row in memory however large the mail (a named cursor, as Django's ``iterator()``
uses, is declared WITH HOLD outside a transaction, and the server copies the whole result first).
Elsewhere (SQLite) both are Django's own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from django.db import connection, transaction


@contextmanager
def binary_cursor() -> Iterator[Any]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            from django.db.backends.postgresql import base

            server_binding: Any = base.ServerBindingCursor  # defined for psycopg 3 only
            cursor.cursor.close()
            cursor.cursor = server_binding(connection.connection)
        yield cursor


def stream(sql: str, params: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
    """The rows of ``sql``, one at a time; on PostgreSQL in binary format, so only use it for
    columns whose binary form psycopg reads as Django would (integers, text, bytea)."""
    with binary_cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(50):
                yield from rows
            return
        # A stream left before its end is cancelled, which fails a transaction it runs in: inside
        # one, it runs in a savepoint of its own, so leaving it early leaves the transaction usable.
        with connection.wrap_database_errors, transaction.atomic() if connection.in_atomic_block else nullcontext():
            yield from cursor.cursor.stream(sql, params, binary=True)
