"""Forwarding a message of a conversation to someone outside it (a supplier, a colleague by mail).

The forward carries the agent's words, the original's headers and text below them as mail clients
write them, and the original's attachments; it leaves through the account today's rules choose and
joins the conversation (so the team sees it, and the answer to it comes back there). It does not
change the conversation's status: the customer is not the one being waited for.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import formats
from django.utils.translation import gettext as _

from buzon.inbound.mail.parse import part_bytes
from buzon.messages import placement
from buzon.messages.models import Attachment as StoredAttachment
from buzon.messages.models import Message
from buzon.messages.outbox import Attachment, SendRefused, queue_outgoing
from buzon.workspace.access import access_conversation
from buzon.workspace.actions import ActionRefused, _event, answered_message
from buzon.workspace.models import EventKind


def _forward_subject(subject: str) -> str:
    return subject if subject[:4].lower() in ("fwd:", "rv: ") else f"Fwd: {subject}".strip()


def _quoted(original: Message) -> str:
    header = [_("---------- Forwarded message ---------"),
              _("From: %(sender)s") % {"sender": f"{original.from_name} <{original.from_address}>".strip()},
              _("Date: %(date)s") % {"date": formats.date_format(original.date or original.created_at,
                                                                 "DATETIME_FORMAT")},
              _("Subject: %(subject)s") % {"subject": original.subject},
              _("To: %(to)s") % {"to": ", ".join(original.to or [])}]
    return "\n".join(header) + "\n\n" + (original.text or "")


def _attachments_of(original: Message) -> list[Attachment]:
    raw = original.raw.data if original.raw_id and original.raw is not None else None
    found: list[Attachment] = []
    for stored in StoredAttachment.objects.filter(message=original, inline=False).order_by("part"):
        part = part_bytes(bytes(raw), stored.part) if raw is not None else None
        if part is not None:
            found.append(Attachment(stored.filename or "attachment", part[0], stored.content_type))
    return found


def do_forward(user: Any, conversation_id: Any, *, to: list[str], text: str = "", message_id: Any = None) -> Message:
    """Queue ``user``'s forward of a message of the conversation (``message_id``; else the latest
    one the customer sent) to ``to``."""
    conversation = access_conversation(user, conversation_id)
    addresses = [a.strip() for a in to if a and a.strip()]
    if not addresses:
        raise ActionRefused(_("Say whom to forward it to."), field="to")
    if message_id not in (None, ""):
        original = Message.objects.filter(pk=int(message_id) if str(message_id).isdigit() else 0,
                                          conversation_id=conversation.pk).select_related("raw").first()
        if original is None:
            raise ActionRefused(_("Choose a message of this conversation."), field="message")
    else:
        original = answered_message(conversation)
        if original is None:
            raise ActionRefused(_("This conversation has no message to answer."), field="conversation")
    body = f"{text.strip()}\n\n{_quoted(original)}" if text.strip() else _quoted(original)
    with transaction.atomic():
        try:
            with placement.joining(conversation.pk):
                subject = _forward_subject(original.subject or conversation.subject)
                message = queue_outgoing(to=addresses, subject=subject, text=body, user=user,
                                         attachments=_attachments_of(original))
        except SendRefused as refused:
            raise ActionRefused(str(refused), field=getattr(refused, "field", "") or "to") from refused
        _event(conversation, user, EventKind.FORWARDED, message=message.pk, to=addresses)
    return message
