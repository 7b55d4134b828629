"""The agent groups that reach store-less mail, as columns of each message and conversation
(buzon.messages.reach): added, kept by triggers from now on, filled for the rows already there, and
indexed in each list's order; and the mail of each agent and of each writer in the lists' order
(the role rule's other terms)."""

import django.db.models.deletion
from django.db import migrations, models


def install(apps, schema_editor):
    from buzon.messages import reach

    reach.install(schema_editor)


def uninstall(apps, schema_editor):
    from buzon.messages import reach

    reach.uninstall(schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0006_list_order_indexes'),
        ('mailboxes', '0013_list_indexes'),
        ('messages_app', '0010_conversation_updated_at'),
    ]

    operations = [
        migrations.AddField(
            model_name='conversation',
            name='account_group',
            field=models.ForeignKey(blank=True, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='crm.agentgroup'),
        ),
        migrations.AddField(
            model_name='conversation',
            name='customer_group',
            field=models.ForeignKey(blank=True, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='crm.agentgroup'),
        ),
        migrations.AddField(
            model_name='message',
            name='account_group',
            field=models.ForeignKey(blank=True, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='crm.agentgroup'),
        ),
        migrations.AddField(
            model_name='message',
            name='customer_group',
            field=models.ForeignKey(blank=True, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='crm.agentgroup'),
        ),
        migrations.RunPython(install, uninstall),
        migrations.AddIndex(
            model_name='conversation',
            index=models.Index(condition=models.Q(('customer_group__isnull', False)), fields=['customer_group', '-last_message_at', '-id'], name='conversation_cgroup_activity'),
        ),
        migrations.AddIndex(
            model_name='conversation',
            index=models.Index(condition=models.Q(('account_group__isnull', False)), fields=['account_group', '-last_message_at', '-id'], name='conversation_agroup_activity'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('customer_group__isnull', False)), fields=['customer_group', '-created_at', '-id'], name='message_customer_group_created'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('account_group__isnull', False)), fields=['account_group', '-created_at', '-id'], name='message_account_group_created'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(fields=['agent', '-created_at', '-id'], name='message_agent_created'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(fields=['created_by', '-created_at', '-id'], name='message_creator_created'),
        ),
    ]
