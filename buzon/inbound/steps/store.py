"""store: save the Message and its attachment list (re-running replaces the list, never adds to it)."""

from __future__ import annotations

from django.db import IntegrityError
from django.utils.translation import gettext_noop

from buzon.crm.savepoints import savepoint
from buzon.inbound.context import Context, Duplicate
from buzon.inbound.steps import deduplicate
from buzon.messages import placement
from buzon.messages.models import Attachment, Message, MessageStatus

NAME = "store"


def run(ctx: Context) -> None:
    message = prepare(ctx)
    is_new = message.pk is None
    try:
        with savepoint():
            placement.place(message, ctx.parent)  # its record's conversation, else its parent's, else new
            message.save()
    except IntegrityError as error:
        # Another worker stored the same mail (same dedupe key, same store) a moment ago.
        existing = deduplicate.same_key(ctx).values_list("pk", flat=True).first()
        if existing is None:
            raise
        raise Duplicate(f"the same message is already stored as message {existing}", existing) from error
    if not is_new:
        message.attachments.all().delete()
    if ctx.mail.attachments:
        Attachment.objects.bulk_create(attachments(ctx))


def prepare(ctx: Context) -> Message:
    """The message ready to save, with the decisions so far (also used by the batch runner)."""
    message = ctx.message
    message.raw = ctx.raw
    message.status = MessageStatus.PROCESSED
    message.status_reason = ""
    ctx.decide(NAME, "stored", gettext_noop("Stored."))
    message.decisions = list(ctx.decisions)
    ctx.decisions_saved = len(ctx.decisions)  # later steps' decisions are saved by the pipeline
    return message


def attachments(ctx: Context) -> list[Attachment]:
    return [Attachment(message=ctx.message, part=a.part, filename=a.filename, content_type=a.content_type,
                       size=a.size, content_id=a.content_id, inline=a.inline) for a in ctx.mail.attachments]
