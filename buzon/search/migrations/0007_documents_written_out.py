"""On PostgreSQL, the triggers write a document's expression out (each column folded once, then
stemmed in Spanish and in English) instead of calling ``search_vector``, a SQL function the planner
does not inline: its body was planned again in every statement, most of the cost of indexing one
message. The documents are the same; those already written stay."""

from django.db import migrations

from buzon.search import schema


class Migration(migrations.Migration):
    dependencies = [("search", "0006_statement_triggers")]
    operations = [migrations.RunPython(schema.refresh_messages_and_notes, migrations.RunPython.noop)]
