"""On PostgreSQL, the bytes of outgoing mail and its attachments are compressed with LZ4 where the
server has it (buzon.core.pg_compression)."""

from django.db import migrations

from buzon.core.pg_compression import compress_with_lz4


class Migration(migrations.Migration):

    dependencies = [
        ("outbound", "0003_outgoing_base_url"),
    ]

    operations = [compress_with_lz4(("outbound", "OutgoingEmail", "mime"), ("outbound", "OutgoingEmail", "html_source"),
                                    ("outbound", "OutgoingAttachment", "content"))]
