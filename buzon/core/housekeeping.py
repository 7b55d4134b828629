"""Planner statistics for the embedded SQLite database: SQLite never gathers them by itself, and
without them its planner guesses (a multi-index OR and a sort where walking a list's ordering index
takes 2 ms). Run after every ``migrate`` (a post_migrate handler) and by a periodic job
(settings.PERIODIC_TASKS "database-statistics").

Each run ANALYZEs the tables that have rows but no statistics yet, and those that grew tenfold
since theirs were taken (SQLite before 3.46 leaves both to the application: its ``PRAGMA optimize``
only looks at tables the same connection has used), then runs ``PRAGMA optimize``. A table is read
whole (0.7 s for every table at 100,000 messages): a sample (``analysis_limit``) caps the rows a
value is counted for at the sample's size, so an almost always null column looks selective and the
planner gathers an agent's mail through three indexes and sorts it instead of walking the list's
index. Tenfold growth makes that a few times in a site's life; a run with nothing to do takes
milliseconds. PostgreSQL needs none of this: autovacuum does it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError, connections
from django_tasks import task

from buzon.core.queues import HOUSEKEEPING

log = logging.getLogger("buzon.housekeeping")

#: Rows each index's statistics are read from; 0: all of them (see above).
ANALYSIS_LIMIT = 0
#: A table this many times larger than when it was last analyzed is analyzed again.
GROWTH = 10


def _count(cursor: Any, table: str, quote: Any) -> int:
    cursor.execute(f"SELECT count(*) FROM {quote(table)}")  # noqa: S608  # nosec B608  a name from sqlite_master
    return int(cursor.fetchone()[0] or 0)


def _largest_rowid(cursor: Any, table: str, quote: Any) -> int:
    """At least the table's number of rows (more after deletions), read from the end of its rowid
    b-tree rather than counted; a table without rowid (the search index's own) is counted."""
    try:
        cursor.execute(f"SELECT max(rowid) FROM {quote(table)}")  # noqa: S608  # nosec B608  a name from sqlite_master
        return int(cursor.fetchone()[0] or 0)
    except DatabaseError:
        return _count(cursor, table, quote)


def _stale(cursor: Any, table: str, known: dict[str, int], quote: Any) -> bool:
    """Whether ``table`` has rows and no statistics, or GROWTH times the rows it had when analyzed."""
    bound = _largest_rowid(cursor, table, quote)
    if bound == 0:
        return False  # empty: nothing to learn yet (ANALYZE records nothing for it)
    if table not in known:
        return True
    threshold = GROWTH * max(known[table], 100)
    # The rowid is only an upper bound where rows were deleted: count before deciding.
    return bound >= threshold and _count(cursor, table, quote) >= threshold


def _known_sizes(cursor: Any) -> dict[str, int]:
    """Rows each table had when last analyzed (the first number of its sqlite_stat1 rows)."""
    cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
    if cursor.fetchone() is None:
        return {}
    cursor.execute("SELECT tbl, stat FROM sqlite_stat1")
    known: dict[str, int] = {}
    for table, stat in cursor.fetchall():
        first = str(stat or "").split(" ")[0]
        if first.isdigit():
            known[table] = max(known.get(table, 0), int(first))
    return known


def optimize_database(using: str = "default") -> list[str]:
    """Gather SQLite's statistics where they are missing or stale; returns the tables analyzed
    (none on PostgreSQL)."""
    connection = connections[using]
    if connection.vendor != "sqlite":
        return []
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA analysis_limit = {int(ANALYSIS_LIMIT)}")
        cursor.execute("SELECT DISTINCT i.tbl_name FROM sqlite_master i JOIN sqlite_master t ON t.name = i.tbl_name "
                       "AND t.type = 'table' WHERE i.type = 'index' AND i.tbl_name NOT LIKE 'sqlite_%' "
                       "AND t.sql NOT LIKE 'CREATE VIRTUAL%'")
        indexed = sorted(row[0] for row in cursor.fetchall())
        known = _known_sizes(cursor)
        stale = [table for table in indexed if _stale(cursor, table, known, quote)]
        for table in stale:
            cursor.execute(f"ANALYZE {quote(table)}")  # noqa: S608  # nosec B608  a name from sqlite_master
        cursor.execute("PRAGMA optimize")
    if stale:
        log.info("gathered planner statistics for %s", ", ".join(stale))
    return stale


def after_migrate(sender: Any, using: str = "default", plan: Any = None, **kwargs: Any) -> None:
    """post_migrate: the statistics after ``migrate`` (not after a test's flush, which sends no plan)."""
    if plan is not None:
        optimize_database(using)


@task(queue_name=HOUSEKEEPING)
def optimize_database_task() -> list[str]:
    return optimize_database()
