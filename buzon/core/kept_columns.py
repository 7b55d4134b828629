# ruff: noqa: S608  # SQL is built from the KeptColumn constants' table and column names only; no values
"""Columns copied from the row a foreign key points at, kept current by the database's triggers.

A list filtered by a condition on its own indexed columns is an index range scan; the same condition
through a join is not. So a value a list is filtered by (the agent group that reaches a store-less
message through its customer: buzon.crm.roles) is copied onto the listed row, and the database keeps
the copy in the same statement as whatever changes it: the row written or pointed elsewhere (a save,
the pipeline's bulk inserts, a queryset ``update``, a merge), or the row it points at changing (a
customer given another group, an account moved into a store). No writer has to remember it.

- SQLite: AFTER INSERT / AFTER UPDATE triggers on the table that set the copy where it differs,
  and one on the source table that rewrites the copies of the rows pointing at a changed row.
- PostgreSQL: a BEFORE INSERT OR UPDATE trigger that sets ``NEW.column``, and the same source trigger.

A row whose ``wall`` column is set (its store) holds no copy: the value only matters for rows
without one, and the triggers cost a store's mail nothing beyond one comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KeptColumn:
    """``table.column`` holds ``source.value`` of the row ``table.key`` points at while ``table.wall``
    is null and (with ``source_wall``) the source row's ``source_wall`` is null too; else null."""

    name: str  # names the triggers: kept_<name>_...
    table: str
    column: str
    key: str
    source: str
    value: str
    wall: str = ""
    source_wall: str = ""

    def expression(self, row: str) -> str:
        """The value the copy must hold for the row ``row`` names (NEW, or the table itself)."""
        found = (f"(SELECT s.{self.value} FROM {self.source} s WHERE s.id = {row}.{self.key}"  # nosec B608  table and column names of KeptColumn constants only
                 + (f" AND s.{self.source_wall} IS NULL" if self.source_wall else "") + ")")
        return f"(CASE WHEN {row}.{self.wall} IS NULL THEN {found} END)" if self.wall else found

    @property
    def watched(self) -> list[str]:
        return [self.key, *([self.wall] if self.wall else []), self.column]

    @property
    def source_watched(self) -> list[str]:
        return [self.value, *([self.source_wall] if self.source_wall else [])]

    def _pointing(self, key: str) -> str:
        return f"{self.key} = {key}" + (f" AND {self.wall} IS NULL" if self.wall else "")


def _differs(left: str, right: str, sqlite: bool) -> str:
    return f"{left} {'IS NOT' if sqlite else 'IS DISTINCT FROM'} {right}"


def sqlite_ddl(kept: KeptColumn) -> list[str]:
    """Every statement may run again (IF NOT EXISTS): ``ensure`` re-creates triggers that a table
    rebuild dropped (SQLite rebuilds a table to alter a column, and its triggers go with it)."""
    n, t, c = kept.name, kept.table, kept.column
    fix = f"UPDATE {t} SET {c} = {kept.expression('NEW')} WHERE id = NEW.id;"  # nosec B608  constant names only
    wrong = _differs(f"NEW.{c}", kept.expression("NEW"), True)
    changed = " OR ".join(_differs(f"OLD.{col}", f"NEW.{col}", True) for col in kept.source_watched)
    return [
        f"CREATE TRIGGER IF NOT EXISTS kept_{n}_ai AFTER INSERT ON {t} WHEN {wrong} BEGIN {fix} END",
        f"CREATE TRIGGER IF NOT EXISTS kept_{n}_au AFTER UPDATE OF {', '.join(kept.watched)} ON {t} "
        f"WHEN {wrong} BEGIN {fix} END",
        f"CREATE TRIGGER IF NOT EXISTS kept_{n}_source AFTER UPDATE OF {', '.join(kept.source_watched)} "  # nosec B608  constant names only
        f"ON {kept.source} WHEN {changed} BEGIN UPDATE {t} SET {c} = {kept.expression(t)} "
        f"WHERE {kept._pointing('NEW.id')}; END",
    ]


def _trigger_names(kept: KeptColumn) -> list[str]:
    return [f"kept_{kept.name}_{op}" for op in ("ai", "au", "source")]


def sqlite_drop(kept: KeptColumn) -> list[str]:
    return [f"DROP TRIGGER IF EXISTS {name}" for name in _trigger_names(kept)]


def postgres_ddl(kept: KeptColumn) -> list[str]:
    n, t, c = kept.name, kept.table, kept.column
    # Called only where the copy may be other than null, or is not null and must be cleared: a
    # store's row, or one pointing nowhere (mail to an address that is no customer), costs no call.
    # (Such a call cost 0.045 ms, three times one with a key: planned for the row's values, its
    # subquery on a null key folds to nothing, so PostgreSQL never settles on one plan for it.)
    points = f"NEW.{kept.key} IS NOT NULL"
    needed = f"({points} AND NEW.{kept.wall} IS NULL) OR NEW.{c} IS NOT NULL" if kept.wall else \
        f"{points} OR NEW.{c} IS NOT NULL"
    changed = " OR ".join(_differs(f"OLD.{col}", f"NEW.{col}", False) for col in kept.source_watched)
    return [
        f"CREATE OR REPLACE FUNCTION kept_{n}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"NEW.{c} := {kept.expression('NEW')}; RETURN NEW; END $$",
        f"CREATE TRIGGER kept_{n} BEFORE INSERT OR UPDATE OF {', '.join(kept.watched)} ON {t} FOR EACH ROW "
        f"WHEN ({needed}) EXECUTE FUNCTION kept_{n}()",
        f"CREATE OR REPLACE FUNCTION kept_{n}_source() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "  # nosec B608  constant names only
        f"UPDATE {t} SET {c} = {kept.expression(t)} WHERE {kept._pointing('NEW.id')}; RETURN NULL; END $$",
        f"CREATE TRIGGER kept_{n}_source AFTER UPDATE OF {', '.join(kept.source_watched)} ON {kept.source} "
        f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION kept_{n}_source()",
    ]


def postgres_drop(kept: KeptColumn) -> list[str]:
    n = kept.name
    return [f"DROP TRIGGER IF EXISTS kept_{n} ON {kept.table}",
            f"DROP TRIGGER IF EXISTS kept_{n}_source ON {kept.source}",
            f"DROP FUNCTION IF EXISTS kept_{n}()", f"DROP FUNCTION IF EXISTS kept_{n}_source()"]


def fill_sql(kept: KeptColumn, sqlite: bool) -> list[str]:
    """Bring every row's copy in line (the rows already there when the column was added)."""
    t, c = kept.table, kept.column
    statements = [f"UPDATE {t} SET {c} = {kept.expression(t)} "  # nosec B608  constant names only
                  f"WHERE {kept.wall + ' IS NULL AND ' if kept.wall else ''}{_differs(c, kept.expression(t), sqlite)}"]
    if kept.wall:
        statements.append(f"UPDATE {t} SET {c} = NULL WHERE {kept.wall} IS NOT NULL AND {c} IS NOT NULL")  # nosec B608  constant names only
    return statements


def _run(connection: Any, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def install(schema_editor: Any, *columns: KeptColumn) -> None:
    """Create the triggers of ``columns`` and fill them (from a migration: ``RunPython``). Another
    engine than SQLite or PostgreSQL gets neither (the copies stay null: groups reach nothing there)."""
    connection = schema_editor.connection
    for kept in columns:
        if connection.vendor == "sqlite":
            _run(connection, [*sqlite_ddl(kept), *fill_sql(kept, True)])
        elif connection.vendor == "postgresql":
            _run(connection, [*postgres_drop(kept), *postgres_ddl(kept), *fill_sql(kept, False)])


def refresh(schema_editor: Any, *columns: KeptColumn) -> None:
    """Create ``columns``' PostgreSQL triggers again as this module writes them now (from a migration
    that changes them); the copies they keep are already right. SQLite's are unchanged. A column
    its table does not have yet (added by a later migration, which installs it) is left alone."""
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    for kept in columns:
        with connection.cursor() as cursor:
            present = {column.name for column in connection.introspection.get_table_description(cursor, kept.table)}
        if kept.column in present:
            _run(connection, [*postgres_drop(kept), *postgres_ddl(kept)])


def uninstall(schema_editor: Any, *columns: KeptColumn) -> None:
    connection = schema_editor.connection
    for kept in columns:
        if connection.vendor == "sqlite":
            _run(connection, sqlite_drop(kept))
        elif connection.vendor == "postgresql":
            _run(connection, postgres_drop(kept))


def ensure(connection: Any, *columns: KeptColumn) -> None:
    """After every ``migrate`` (post_migrate): on SQLite, re-create the triggers a migration's table
    rebuild dropped, and bring the copies in line again (rows written while they were missing).
    Columns not added yet (their migration not applied) are left alone."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for kept in columns:
            cursor.execute(f"PRAGMA table_info({kept.table})")
            if kept.column not in {row[1] for row in cursor.fetchall()}:
                continue
            names = _trigger_names(kept)
            cursor.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN "  # nosec B608  placeholders; the names are parameters
                           f"({', '.join('%s' for _ in names)})", names)
            if cursor.fetchone()[0] == len(names):
                continue
            for statement in [*sqlite_ddl(kept), *fill_sql(kept, True)]:
                cursor.execute(statement)
