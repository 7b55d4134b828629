"""CustomerEmail.store (a copy of its customer's store) and an address unique per store instead of
across all stores: a person who writes to two stores gets one customer card in each."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0002_customer_contact_customeremail_jobapplicant_ticket_and_more'),
    ]

    operations = [
        migrations.AddField(
            model_name='customeremail',
            name='store',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='crm.store', verbose_name='store'),
        ),
        migrations.AlterField(
            model_name='customeremail',
            name='address',
            field=models.EmailField(max_length=320, verbose_name='email address'),
        ),
        # Every row has no store until 0004 fills it, and addresses were unique: both hold already.
        migrations.AddConstraint(
            model_name='customeremail',
            constraint=models.UniqueConstraint(fields=('address', 'store'), name='customer_email_once_per_store'),
        ),
        migrations.AddConstraint(
            model_name='customeremail',
            constraint=models.UniqueConstraint(condition=models.Q(('store__isnull', True)), fields=('address',), name='customer_email_once_without_store'),
        ),
    ]
