"""On PostgreSQL, raw mail is compressed with LZ4 where the server has it (buzon.core.pg_compression)."""

from django.db import migrations

from buzon.core.pg_compression import compress_with_lz4


class Migration(migrations.Migration):

    dependencies = [
        ("sync", "0008_rawcontent"),
    ]

    operations = [compress_with_lz4(("sync", "RawContent", "data"))]
