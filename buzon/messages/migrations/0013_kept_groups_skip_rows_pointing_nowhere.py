"""On PostgreSQL, the triggers keeping a store-less message's or conversation's agent groups
(buzon.messages.reach) are no longer called for a row with no customer (or no account): its group
stays null without them. Going back leaves them so: the copies they keep are the same either way."""

from django.db import migrations


def refresh(apps, schema_editor):
    from buzon.messages import reach

    reach.refresh(schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ("messages_app", "0012_bodies_lz4"),
    ]

    operations = [migrations.RunPython(refresh, migrations.RunPython.noop)]
