"""Mail-sized columns on PostgreSQL compressed with LZ4 instead of the default, pglz.

PostgreSQL compresses a value of more than about 2 KB before it stores it out of line (TOAST).
Its default method, pglz, is slow: a plain downloader that stored realistic mail (HTML, base64
attachments; 800 messages, 148 MB) into a bytea column managed 204–224 msg/s with pglz and
722–807 msg/s with LZ4, on the same two cores (`bench/bench_download.py --postgres` floor; the
experiment is in the issue-16 note). LZ4 is built into PostgreSQL 14 and later where the server
was compiled with it (Debian's packages and the official images are); it compresses a little
less. A column's method applies to values written after it is set: values already stored stay
as they are and read back the same, so setting it is instant (it takes the table's lock for that
moment), and a server without LZ4 keeps pglz. A dump of such a database names LZ4 for these
columns: to restore it on a server without LZ4, dump with `pg_dump --no-toast-compression`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import migrations


def lz4_available(connection: Any) -> bool:
    """Whether this PostgreSQL server can compress with LZ4 (14 or later, built with it)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
                       "AND 'lz4' = ANY(enumvals)")
        return cursor.fetchone() is not None


def set_compression(apps: Any, schema_editor: Any, *, fields: tuple[tuple[str, str, str], ...],
                    method: str) -> None:
    """Set these (app label, model, field) columns' compression `method` (lz4, or default), on
    PostgreSQL where the server has LZ4; nothing elsewhere."""
    connection = schema_editor.connection
    if connection.vendor != "postgresql" or not lz4_available(connection):
        return
    quote = schema_editor.quote_name
    for app_label, model_name, field_name in fields:
        model = apps.get_model(app_label, model_name)
        column = model._meta.get_field(field_name).column
        schema_editor.execute(f"ALTER TABLE {quote(model._meta.db_table)} ALTER COLUMN {quote(column)} "
                              f"SET COMPRESSION {method}")


def compress_with_lz4(*fields: tuple[str, str, str]) -> migrations.RunPython:
    """A migration operation: these columns use LZ4 (`set_compression`); going back sets them to the
    server's default again. (functools.partial of a module-level function: Django can write it out
    when migrations are squashed.)"""
    return migrations.RunPython(partial(set_compression, fields=fields, method="lz4"),
                                partial(set_compression, fields=fields, method="default"))
