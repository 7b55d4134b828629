"""A message's bytes move to a table of their own (RawContent): see its docstring. Rows that hold
only a server key (empty bytes) get none. On a big SQLite database this copies every message once."""

from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):

    dependencies = [
        ("sync", "0007_pop3_first_listed"),
    ]

    operations = [
        migrations.CreateModel(
            name="RawContent",
            fields=[
                ("raw", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                             related_name="+", serialize=False, to="sync.rawmessage")),
                ("data", models.BinaryField()),
            ],
        ),
        migrations.RunSQL(
            "INSERT INTO sync_rawcontent (raw_id, data) SELECT id, data FROM sync_rawmessage WHERE length(data) > 0",
            "UPDATE sync_rawmessage SET data = (SELECT c.data FROM sync_rawcontent c WHERE c.raw_id = sync_rawmessage.id)"
            " WHERE id IN (SELECT raw_id FROM sync_rawcontent)",
        ),
        # Only so that going back can add the column again to rows that exist (no database change).
        migrations.AlterField(model_name="rawmessage", name="data", field=models.BinaryField(default=b"")),
        migrations.RemoveField(model_name="rawmessage", name="data"),
    ]
