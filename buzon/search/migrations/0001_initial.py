"""The search index of messages (buzon.search.schema): an FTS5 table on SQLite, a tsvector table
with a GIN index on PostgreSQL, each kept by triggers; the mail already stored is indexed here."""

from django.db import migrations

from buzon.search import schema


def install(apps, schema_editor):
    schema.install(schema_editor, schema.MESSAGES)


def uninstall(apps, schema_editor):
    schema.uninstall(schema_editor, schema.MESSAGES)


class Migration(migrations.Migration):
    atomic = True
    dependencies = [
        ("messages_app", "0010_conversation_updated_at"),
        ("crm", "0004_fill_customeremail_store"),
    ]
    operations = [migrations.RunPython(install, uninstall)]
