"""Undeliverable addresses per store: each row gets the store of the bounce that taught it.

Before, one row marked an address undeliverable for every store, so a bounce (anyone can write
one) received by store A stopped store B's mail too. Existing rows keep applying where they were
learnt: the store of their bounce message (the receiving account's store, copied on the message),
or no store when that bounce is gone or was store-less, which then applies to store-less mail only.
"""

import django.db.models.deletion
from django.db import migrations, models


def learnt_where(apps, schema_editor):
    Undeliverable = apps.get_model("messages_app", "UndeliverableAddress")
    Message = apps.get_model("messages_app", "Message")
    stores = dict(Message.objects.filter(
        pk__in=Undeliverable.objects.filter(bounce__isnull=False).values("bounce_id"),
        store__isnull=False).values_list("pk", "store_id"))
    for row in Undeliverable.objects.filter(bounce_id__in=list(stores)).only("pk", "bounce_id").iterator():
        Undeliverable.objects.filter(pk=row.pk).update(store_id=stores[row.bounce_id])


class Migration(migrations.Migration):

    dependencies = [
        ("crm", "0004_fill_customeremail_store"),
        ("messages_app", "0004_fill_message_store"),
    ]

    operations = [
        migrations.AddField(
            model_name="undeliverableaddress",
            name="store",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="+", to="crm.store", verbose_name="store"),
        ),
        migrations.AlterField(
            model_name="undeliverableaddress",
            name="address",
            field=models.EmailField(max_length=320, verbose_name="email address"),
        ),
        migrations.RunPython(learnt_where, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="undeliverableaddress",
            constraint=models.UniqueConstraint(condition=models.Q(("store__isnull", False)),
                                               fields=("store", "address"), name="undeliverable_once_per_store"),
        ),
        migrations.AddConstraint(
            model_name="undeliverableaddress",
            constraint=models.UniqueConstraint(condition=models.Q(("store__isnull", True)),
                                               fields=("address",), name="undeliverable_once_storeless"),
        ),
    ]
