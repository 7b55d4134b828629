"""Predefined account templates (seed 3.1): support, jobs, notifications and sales.

They are disabled and carry placeholder addresses on example.invalid until an admin gives them real
details; saving them with a real address and a working server makes them ordinary accounts.
"""

from django.db import migrations

TEMPLATES = [
    # role, local part, display name, incoming?, outgoing?, append_to
    ("support", "support", "Support", True, True, "ticket"),
    ("jobs", "jobs", "Jobs", True, False, "job_applicant"),
    ("notifications", "notifications", "Notifications", False, True, ""),
    ("sales", "sales", "Sales", True, True, "customer"),
]


def create_templates(apps, schema_editor):
    EmailAccount = apps.get_model("mailboxes", "EmailAccount")
    for role, local, name, incoming, outgoing, append_to in TEMPLATES:
        EmailAccount.objects.get_or_create(
            email_address=f"{local}@example.invalid",
            defaults={
                "template_role": role, "display_name": name, "state": "disabled",
                "incoming_enabled": False, "outgoing_enabled": False,
                "incoming_protocol": "imap" if incoming else "", "folders": ["INBOX"] if incoming else [],
                "append_to": append_to, "auto_link": incoming, "append_to_sent": outgoing,
            },
        )


def remove_templates(apps, schema_editor):
    EmailAccount = apps.get_model("mailboxes", "EmailAccount")
    EmailAccount.objects.filter(email_address__endswith="@example.invalid").exclude(template_role="").delete()


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0002_one_default_per_direction")]
    operations = [migrations.RunPython(create_templates, remove_templates)]
