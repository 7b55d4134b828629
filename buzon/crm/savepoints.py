"""A savepoint where the database needs one to survive an expected IntegrityError."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection, transaction


@contextlib.contextmanager
def savepoint() -> Iterator[None]:
    """PostgreSQL aborts the whole transaction on an error unless a savepoint wraps the statement.

    SQLite only fails the statement, so the two extra round trips per insert are skipped there:
    the pipeline's hot path inserts a customer and a message per mail.
    """
    if connection.vendor == "sqlite":
        yield
        return
    with transaction.atomic():
        yield
