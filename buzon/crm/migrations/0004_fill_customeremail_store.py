"""Fill CustomerEmail.store from each address's customer, in committed batches of primary keys
(see messages_app 0004 for why); resumable."""

from django.db import migrations
from django.db.models import Max, Min, OuterRef, Subquery

BATCH = 5000


def fill(apps, schema_editor):
    Customer = apps.get_model('crm', 'Customer')
    CustomerEmail = apps.get_model('crm', 'CustomerEmail')
    db = schema_editor.connection.alias
    rows = CustomerEmail.objects.using(db)
    bounds = rows.aggregate(low=Min('id'), high=Max('id'))
    if bounds['low'] is None:
        return
    store_of_customer = Subquery(Customer.objects.using(db).filter(pk=OuterRef('customer_id')).values('store_id')[:1])
    for low in range(bounds['low'], bounds['high'] + 1, BATCH):
        rows.filter(id__gte=low, id__lt=low + BATCH, store__isnull=True, customer__store__isnull=False).update(
            store_id=store_of_customer)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('crm', '0003_customeremail_store'),
    ]

    operations = [
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
    ]
