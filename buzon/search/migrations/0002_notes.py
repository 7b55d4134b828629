"""Agents' internal notes are searched too (buzon.search.schema.NOTES)."""

from django.db import migrations

from buzon.search import schema


def install(apps, schema_editor):
    schema.install(schema_editor, schema.NOTES)


def uninstall(apps, schema_editor):
    schema.uninstall(schema_editor, schema.NOTES)


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0001_initial"),
        ("workspace", "0006_notes_and_canned_responses"),
    ]
    operations = [migrations.RunPython(install, uninstall)]
