"""Notifications written before they were kept as data (their text in the worker's language, usually
English) get their parameters back, so they too read in each reader's language.

Only texts that match a notification's own wording exactly (English or Spanish) are converted; any
other text is left as written. Where a sender's name could be split two ways, both read the same.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import migrations

PATTERNS: dict[str, list[re.Pattern[str]]] = {
    "customer_assigned": [re.compile(r"^Customer (?P<customer>.*) has been assigned to you\.$", re.S),
                          re.compile(r"^Se le ha asignado el cliente (?P<customer>.*)\.$", re.S)],
    "new_email": [re.compile(r"^New email from (?P<sender>.*?): (?P<subject>.*)$", re.S),
                  re.compile(r"^Nuevo correo de (?P<sender>.*?): (?P<subject>.*)$", re.S)],
    "unreplied": [
        re.compile(r"^No reply yet to the email from (?P<sender>\S*) received at (?P<account>\S*): (?P<subject>.*)$",
                   re.S),
        re.compile(r"^Todavía sin respuesta al correo de (?P<sender>\S*) recibido en (?P<account>\S*): "
                   r"(?P<subject>.*)$", re.S)],
}


def params_of(kind: str, text: str) -> dict[str, str] | None:
    for pattern in PATTERNS.get(kind, []):
        found = pattern.match(text)
        if found is not None:
            return found.groupdict()
    return None


def forwards(apps: Any, schema_editor: Any) -> None:
    Notification = apps.get_model("crm", "Notification")
    NotificationDetail = apps.get_model("inbound", "NotificationDetail")
    rows = Notification.objects.filter(kind__in=list(PATTERNS), detail__isnull=True).values_list("id", "kind", "text")
    details = []
    for pk, kind, text in rows.iterator(chunk_size=1000):
        params = params_of(kind, text)
        if params is not None:
            details.append(NotificationDetail(notification_id=pk, params=params))
        if len(details) >= 1000:
            NotificationDetail.objects.bulk_create(details, ignore_conflicts=True)
            details = []
    NotificationDetail.objects.bulk_create(details, ignore_conflicts=True)


class Migration(migrations.Migration):

    dependencies = [("inbound", "0003_attachment_notes_as_data")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
