"""Message.store (the receiving or sending account's store, read by the visibility rule) and
dedupe_key unique per store instead of across all stores."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0002_customer_contact_customeremail_jobapplicant_ticket_and_more'),
        ('messages_app', '0002_message_agent_message_classification_and_more'),
    ]

    operations = [
        migrations.AddField(
            model_name='message',
            name='store',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='crm.store', verbose_name='store'),
        ),
        migrations.AlterField(
            model_name='message',
            name='dedupe_key',
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(fields=['store', '-created_at', '-id'], name='message_store_created'),
        ),
        # Every row has no store until 0004 fills it, and dedupe_key was unique: both hold already.
        migrations.AddConstraint(
            model_name='message',
            constraint=models.UniqueConstraint(fields=('store', 'dedupe_key'), name='message_dedupe_once_per_store'),
        ),
        migrations.AddConstraint(
            model_name='message',
            constraint=models.UniqueConstraint(condition=models.Q(('store__isnull', True)), fields=('dedupe_key',), name='message_dedupe_once_without_store'),
        ),
    ]
