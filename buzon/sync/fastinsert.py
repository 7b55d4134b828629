"""Insert (and update) many rows with one prepared statement (executemany), values prepared by Django's fields.

bulk_create() compiles SQL per object and, on SQLite, splits a batch into statements of ~40 rows;
for a first download that compile step costs more than writing the mail. Values here are what
each field's own pre_save()/get_db_prep_save() make of them, exactly as bulk_create prepares them;
a value already of the plain type such a field stores (a str for a CharField, an int for an
IntegerField) is passed as it is, since those calls would return it unchanged, and an aware
datetime goes straight to the database's adapter, where those calls would take it.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from django.db import connection, models

from buzon.core import pg_binary

# Fields whose database value is the Python value itself when it already has this type (or is None).
_PLAIN: dict[type[models.Field[Any, Any]], type] = {
    models.CharField: str, models.TextField: str, models.BooleanField: bool,
    models.IntegerField: int, models.BigIntegerField: int, models.SmallIntegerField: int,
    models.PositiveIntegerField: int, models.PositiveBigIntegerField: int, models.PositiveSmallIntegerField: int,
}


def _plain_type(field: models.Field[Any, Any]) -> type | None:
    if isinstance(field, models.ForeignKey):
        target = field.target_field
        return int if isinstance(target, models.AutoField | models.BigAutoField) else _PLAIN.get(type(target))
    return _PLAIN.get(type(field))


def preparer(field: models.Field[Any, Any], *, inserting: bool = True) -> Callable[[models.Model], Any]:
    """What makes the database value of `field` from an object (see the module docstring)."""
    plain = _plain_type(field)
    # auto_now and the like, on insert; an update writes the value the object holds, as bulk_update().
    own_pre_save = inserting and type(field).pre_save is not models.Field.pre_save
    attname = field.attname

    if type(field) is models.DateTimeField:
        def prepare_datetime(obj: models.Model) -> Any:
            value = field.pre_save(obj, True) if own_pre_save else getattr(obj, attname)
            if type(value) is datetime.datetime and value.tzinfo is not None:
                # What get_db_prep_save() comes to for an aware datetime, without its checks for
                # strings, naive values and expressions: every row has a few, a batch thousands.
                return connection.ops.adapt_datetimefield_value(value)
            return field.get_db_prep_save(value, connection)

        return prepare_datetime

    def prepare(obj: models.Model) -> Any:
        value = field.pre_save(obj, True) if own_pre_save else getattr(obj, attname)
        if plain is not None and (value is None or type(value) is plain):
            return value
        return field.get_db_prep_save(value, connection)

    return prepare


def _fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    """The fields an insert writes, in its columns' order: all but an auto-incremented key."""
    return [f for f in model._meta.concrete_fields
            if not (f.primary_key and isinstance(f, models.AutoField | models.BigAutoField))]


@cache
def _statement(model: type[models.Model], vendor: str) -> tuple[str, str | None, list[Callable[[models.Model], Any]]]:
    fields = _fields(model)
    quote = connection.ops.quote_name
    # Names come from the model's metadata; every value is a query parameter.
    columns = ", ".join(quote(str(f.column)) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks})"  # noqa: S608  # nosec B608
    pk = model._meta.pk
    returning = None
    if connection.features.can_return_columns_from_insert and isinstance(pk, models.AutoField | models.BigAutoField):
        returning = f"{sql} RETURNING {quote(str(pk.column))}"
    return sql, returning, [preparer(f) for f in fields]


def insert_rows(objs: Sequence[models.Model]) -> None:
    """Insert `objs`; a single row gets its primary key back (RETURNING, where the database has
    it), so the caller need not read it back by its natural key. On PostgreSQL, many rows with few
    bytes (``UNNEST_BYTES_MAX``) go in one statement of arrays (``_unnest_insert``): one statement,
    so one call of a table's statement-level triggers, where executemany sends, and the server runs,
    one INSERT a row."""
    if not objs:
        return
    model = type(objs[0])
    sql, returning, preparers = _statement(model, connection.vendor)
    with pg_binary.binary_cursor() as cursor:  # binary format (pg_binary): bytes as they are
        if connection.vendor == "postgresql" and len(objs) > 1 and _bytes(objs) <= UNNEST_BYTES_MAX:
            cursor.execute(_unnest_insert(model, sql), [[prepare(obj) for obj in objs] for prepare in preparers])
            return
        params = [[prepare(obj) for prepare in preparers] for obj in objs]
        if returning and len(objs) == 1:
            cursor.execute(returning, params[0])
            objs[0].pk = cursor.fetchone()[0]
        else:
            cursor.executemany(sql, params)


#: The most bytes one statement of arrays carries. A large array of bytes costs the server more to
#: build and unpack than one INSERT a row costs (100 raw messages of 30 KB: 38-43 ms as one array in
#: binary format, 18-24 ms with executemany, PostgreSQL 15), so only rows with few bytes go together
#: (queued mail, whose bytes are written when it is sent); raw mail goes one INSERT a row, its bytes
#: sent as they are.
UNNEST_BYTES_MAX = 256 * 1024


def _bytes(objs: Sequence[models.Model]) -> int:
    fields = _binary_fields(type(objs[0]))
    return sum(len(getattr(obj, name) or b"") for obj in objs for name in fields) if fields else 0


@cache
def _binary_fields(model: type[models.Model]) -> tuple[str, ...]:
    return tuple(f.attname for f in model._meta.concrete_fields if isinstance(f, models.BinaryField))


def _unnest_insert(model: type[models.Model], sql: str) -> str:
    """``sql`` (``_statement``'s INSERT … VALUES) as INSERT … SELECT * FROM unnest(…) (PostgreSQL):
    one array per column. Its text is the same for any number of rows, so psycopg splits it once
    (a multi-row VALUES of a few KB is split at each call: a sixth of the web's samples in a profile
    of API batches), and the server reads few parameters. Rows are inserted in the arrays' order."""
    names = tuple(f.name for f in _fields(model))
    return f"{sql[:sql.index(' VALUES ')]} SELECT * FROM {unnest_sql(model, names, 'v')}"  # noqa: S608  # nosec B608


def insert_rows_returning(objs: Sequence[models.Model]) -> None:
    """insert_rows() that gives every row its primary key: INSERTs with RETURNING, one of arrays on
    PostgreSQL, multi-row VALUES elsewhere (as many rows per statement as the database takes
    parameters); rows come back in the order they were given, which Django's bulk_create relies on."""
    if not objs:
        return
    model = type(objs[0])
    sql, returning, preparers = _statement(model, connection.vendor)
    if returning is None or not connection.features.can_return_rows_from_bulk_insert:
        for obj in objs:
            insert_rows([obj])
        return
    pk = model._meta.pk
    assert pk is not None
    head = sql[:sql.index(" VALUES ")]
    back = f" RETURNING {connection.ops.quote_name(str(pk.column))}"
    if connection.vendor == "postgresql":
        # Rows come back in the arrays' order, as Django's own bulk_create on PostgreSQL relies on.
        chunks: list[tuple[str, Sequence[models.Model], list[Any]]] = [(
            f"{_unnest_insert(model, sql)}{back}", objs, [[prepare(obj) for obj in objs] for prepare in preparers])]
    else:
        per_statement = max(1, (connection.features.max_query_params or 10_000) // len(preparers))
        row_marks = "(" + ", ".join(["%s"] * len(preparers)) + ")"
        chunks = [(f"{head} VALUES {', '.join([row_marks] * len(chunk))}{back}", chunk,  # nosec B608
                   [prepare(obj) for obj in chunk for prepare in preparers])
                  for chunk in (objs[start:start + per_statement] for start in range(0, len(objs), per_statement))]
    with pg_binary.binary_cursor() as cursor:
        for statement, chunk, params in chunks:
            cursor.execute(statement, params)
            for obj, (key,) in zip(chunk, cursor.fetchall(), strict=True):
                obj.pk = key
                obj._state.adding, obj._state.db = False, connection.alias  # saved, as bulk_create() leaves them


@cache
def _update_statement(model: type[models.Model], names: tuple[str, ...],
                      vendor: str) -> tuple[str, list[Callable[[models.Model], Any]]]:
    fields = [model._meta.get_field(name) for name in names]
    quote = connection.ops.quote_name
    pk = model._meta.pk
    assert pk is not None
    assignments = ", ".join(f"{quote(str(f.column))} = %s" for f in fields)  # type: ignore[union-attr]
    sql = f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {quote(str(pk.column))} = %s"  # noqa: S608  # nosec B608
    return sql, [preparer(f, inserting=False) for f in fields] + [preparer(pk, inserting=False)]  # type: ignore[arg-type]


def update_rows(objs: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write ``fields`` of every obj to its row, by primary key: on PostgreSQL in one statement
    (``UPDATE … FROM unnest``: one array per field), elsewhere with one prepared statement a row.

    What bulk_update() does for rows that differ from each other, without its CASE WHEN per field
    and row (an expression tree Django builds and compiles: ~2 ms a row for seven fields). As
    bulk_update(), it writes the values the objects hold (no auto_now) and sends no signals. The
    objects are distinct rows (one UPDATE … FROM would write a row named twice once)."""
    if not objs:
        return
    model = type(objs[0])
    sql, preparers = _update_statement(model, tuple(fields), connection.vendor)
    with pg_binary.binary_cursor() as cursor:
        if connection.vendor == "postgresql" and len(objs) > 1:
            pk = model._meta.pk
            assert pk is not None
            cursor.execute(unnest_update_sql(model, fields, (pk.name,)),
                           [[prepare(obj) for obj in objs] for prepare in preparers])
        else:
            cursor.executemany(sql, [[prepare(obj) for prepare in preparers] for obj in objs])


def unnest_sql(model: type[models.Model], fields: Sequence[str], alias: str) -> str:
    """`unnest(%s::type[], …) AS alias(column, …)` (PostgreSQL): rows passed as one array per field,
    each cast to an array of its column's type, strings to text (a NULL has no type of its own, and a
    cast to varchar(n) would cut a long value where the column refuses it). The text does not
    depend on the number of rows, so psycopg parses it once and the parameters stay few.

    Every array is bound in binary format (``%b``): bytes as they are, numbers and timestamps as the
    server stores them. In text format psycopg writes each array's literal in Python, escaping
    every value (about 40 ms a MB of bytes, 8 µs a timestamp; ``pg_binary``), and the server parses
    it all back. So SQL of these runs on ``pg_binary.binary_cursor()``, which binds on the server: a
    client-side binding cursor has no binary format."""
    marks = (f"%b::{_cast(model, name)}[]" for name in fields)
    return (f"unnest({', '.join(marks)}) "
            f"AS {alias}({', '.join(column(model, name) for name in fields)})")


def unnest_update_sql(model: type[models.Model], fields: Sequence[str], keys: Sequence[str]) -> str:
    """UPDATE … FROM unnest(…): rows' `fields`, each row matched by its `keys`, in one statement
    (PostgreSQL); the parameters are one array per field, then one per key (`unnest_sql`)."""
    quote = connection.ops.quote_name
    columns = {name: column(model, name) for name in (*fields, *keys)}
    return (f"UPDATE {quote(model._meta.db_table)} AS t SET "  # noqa: S608  # nosec B608
            + ", ".join(f"{columns[name]} = v.{columns[name]}" for name in fields)
            + f" FROM {unnest_sql(model, (*fields, *keys), 'v')}"
            + " WHERE " + " AND ".join(f"t.{columns[name]} = v.{columns[name]}" for name in keys))


@cache
def model_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """`model`'s concrete field `name` (a relation's own field, by its name)."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


@cache
def column(model: type[models.Model], name: str) -> str:
    """The quoted column of `model`'s field `name`, for SQL built from the models' names."""
    return connection.ops.quote_name(str(model_field(model, name).column))


@cache
def _cast(model: type[models.Model], name: str) -> str:
    db_type = str(model_field(model, name).db_type(connection))
    return "text" if db_type.startswith("varchar") else db_type
