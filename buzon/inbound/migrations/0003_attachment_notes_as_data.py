"""Notes on attachments left out (the account's attachment limit) become data, shown to each reader in
their language, and leave the message bodies they were written into (in the worker's language).

Only notes Buzón wrote are touched: the raw message is marked truncated (the sender cannot set that),
its note reads exactly as Buzón wrote it (English or Spanish heading, then "- name (type, N KB)"
lines), and the body ends with exactly that note. Anything else is left as it is.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.db import migrations

HEADINGS = (
    "Attachments left out because the message is larger than the account's attachment limit:",
    "Adjuntos omitidos porque el mensaje supera el límite de adjuntos de la cuenta:",
)
UNNAMED = ("(no name)", "(sin nombre)")
LINE = re.compile(r"^- (?P<name>.*) \((?P<type>[^,()]*), (?P<kb>\d+) KB\)$")


def as_data(note: str) -> str | None:
    lines = note.split("\n")
    if lines[0] not in HEADINGS:
        return None
    items = []
    for line in lines[1:]:
        found = LINE.match(line)
        if found is None:
            return None
        name = found["name"]
        items.append({"name": "" if name in UNNAMED else name, "type": found["type"], "size": int(found["kb"]) * 1024})
    return json.dumps(items, ensure_ascii=False)


def body_without(text: str, note: str) -> str | None:
    if text == note:
        return ""
    if text.endswith("\n\n" + note):
        return text[: -len(note) - 2]
    return None


def forwards(apps: Any, schema_editor: Any) -> None:
    from buzon.inbound.mail import htmltext

    RawMessage = apps.get_model("sync", "RawMessage")
    Message = apps.get_model("messages_app", "Message")
    notes = RawMessage.objects.filter(truncated=True).exclude(truncation_note="")
    notes = notes.exclude(truncation_note__startswith="[")  # already data
    for raw_id, note in notes.values_list("id", "truncation_note").iterator(chunk_size=500):
        data = as_data(note)
        if data is None:
            continue
        RawMessage.objects.filter(pk=raw_id).update(truncation_note=data, truncated=True)
        for message in Message.objects.filter(raw_id=raw_id).only("id", "text", "html"):
            body = body_without(message.text, note)
            if body is None:
                continue
            if not body and message.html:  # the note stood in for the text an HTML-only mail lacks
                body = htmltext.to_text(message.html)
            Message.objects.filter(pk=message.pk).update(text=body)


class Migration(migrations.Migration):

    dependencies = [
        ("inbound", "0002_notificationdetail"),
        ("messages_app", "0002_message_agent_message_classification_and_more"),
        ("sync", "0004_synclease_epoch"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
