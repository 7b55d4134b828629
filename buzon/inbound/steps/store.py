"""store: save the Message and its attachment list (re-running replaces the list, never adds to it)."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_noop

from buzon.inbound.context import Context, Duplicate
from buzon.messages.models import Attachment, Message, MessageStatus

NAME = "store"


def run(ctx: Context) -> None:
    message = ctx.message
    message.raw = ctx.raw
    message.status = MessageStatus.PROCESSED
    message.status_reason = ""
    try:
        with transaction.atomic():
            message.save()
    except IntegrityError as error:
        # Another worker stored the same mail (same dedupe key) a moment ago.
        existing = Message.objects.filter(dedupe_key=message.dedupe_key).first()
        if existing is None:
            raise
        raise Duplicate(f"the same message is already stored as message {existing.pk}", existing) from error
    message.attachments.all().delete()
    Attachment.objects.bulk_create([
        Attachment(message=message, part=a.part, filename=a.filename, content_type=a.content_type, size=a.size,
                   content_id=a.content_id, inline=a.inline)
        for a in ctx.mail.attachments
    ])
    ctx.decide(NAME, "stored", gettext_noop("Stored as message %(message)s."), message=message.pk)
