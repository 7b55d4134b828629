"""On PostgreSQL, a message whose sender or customer changes, and not its subject or text, re-indexes
the columns after its body alone (schema._postgres_after), not its subject and body again: sending
writes the sender's name the queued message did not have yet, so every outgoing message was folded
and stemmed twice."""

from django.db import migrations

from buzon.search import schema


class Migration(migrations.Migration):
    dependencies = [("search", "0004_attachment_names_alone")]
    operations = [migrations.RunPython(schema.refresh_messages_and_notes, migrations.RunPython.noop)]
