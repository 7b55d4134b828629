"""On PostgreSQL, message bodies are compressed with LZ4 where the server has it (buzon.core.pg_compression)."""

from django.db import migrations

from buzon.core.pg_compression import compress_with_lz4


class Migration(migrations.Migration):

    dependencies = [
        ("messages_app", "0011_reach_groups"),
    ]

    operations = [compress_with_lz4(("messages_app", "Message", "text"), ("messages_app", "Message", "html"))]
