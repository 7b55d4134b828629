"""On PostgreSQL, rows inserted or deleted in one statement are indexed (or taken out of the index)
by one statement-level trigger call, not one per row: the pipeline's bulk insert of a chunk's
messages, a batch send's messages and a chunk's attachments each fold and stem their rows in one
INSERT ... SELECT. The row-level insert and delete trigger of the first installs is dropped."""

from django.db import migrations

from buzon.search import schema


class Migration(migrations.Migration):
    dependencies = [("search", "0005_sender_and_customer_alone")]
    operations = [migrations.RunPython(schema.refresh_messages_and_notes, migrations.RunPython.noop)]
