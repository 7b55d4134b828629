"""Fill Message.store from each message's account, for the rows written before the column existed.

In batches of primary keys, each committed on its own (``atomic = False``), so a million-row table
is neither one long transaction nor one huge UPDATE, and an interrupted run resumes where it
stopped (only rows still without a store whose account has one are touched).
"""

from django.db import migrations
from django.db.models import Max, Min, OuterRef, Subquery

BATCH = 5000


def fill(apps, schema_editor):
    Message = apps.get_model('messages_app', 'Message')
    EmailAccount = apps.get_model('mailboxes', 'EmailAccount')
    db = schema_editor.connection.alias
    rows = Message.objects.using(db)
    bounds = rows.aggregate(low=Min('id'), high=Max('id'))
    if bounds['low'] is None:
        return
    store_of_account = Subquery(EmailAccount.objects.using(db).filter(pk=OuterRef('account_id')).values('store_id')[:1])
    for low in range(bounds['low'], bounds['high'] + 1, BATCH):
        rows.filter(id__gte=low, id__lt=low + BATCH, store__isnull=True, account__store__isnull=False).update(
            store_id=store_of_account)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('mailboxes', '0001_initial'),
        ('messages_app', '0003_message_store'),
    ]

    operations = [
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
    ]
