"""Insert many rows with one prepared statement (executemany), values prepared by Django's fields.

bulk_create() compiles SQL per object and, on SQLite, splits a batch into statements of ~40 rows;
for a first download that compile step costs more than writing the mail. Values here go through
each field's own pre_save()/get_db_prep_save(), exactly as bulk_create prepares them.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models


def insert_rows(objs: Sequence[models.Model]) -> None:
    """Insert `objs`; a single row gets its primary key back (RETURNING, where the database has
    it), so the caller need not read it back by its natural key."""
    if not objs:
        return
    model = type(objs[0])
    fields = [f for f in model._meta.concrete_fields
              if not (f.primary_key and isinstance(f, models.AutoField | models.BigAutoField))]
    quote = connection.ops.quote_name
    # Names come from the model's metadata; every value is a query parameter.
    columns = ", ".join(quote(str(f.column)) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks})"  # noqa: S608  # nosec B608
    params = [[field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields] for obj in objs]
    pk = model._meta.pk
    returning = len(objs) == 1 and connection.features.can_return_columns_from_insert and pk is not None and \
        isinstance(pk, models.AutoField | models.BigAutoField)
    with connection.cursor() as cursor:
        if returning:
            assert pk is not None
            cursor.execute(f"{sql} RETURNING {quote(str(pk.column))}", params[0])
            objs[0].pk = cursor.fetchone()[0]
        else:
            cursor.executemany(sql, params)
