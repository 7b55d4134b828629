"""On PostgreSQL, an attachment added, renamed or removed re-indexes its message's attachment names
alone (schema._postgres_after), not the message's subject and body again: the pipeline writes a
message and then its attachments, so each message's body was folded and stemmed once more for
each attachment it has."""

from django.db import migrations

from buzon.search import schema


def refresh(apps, schema_editor):
    schema.refresh(schema_editor, schema.MESSAGES)


class Migration(migrations.Migration):
    dependencies = [("search", "0003_bounded_body_and_fast_fold")]
    operations = [migrations.RunPython(refresh, migrations.RunPython.noop)]
