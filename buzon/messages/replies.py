"""Who answered a conversation, and what that does to its ticket: one rule for every path.

- A *person's reply* is outgoing mail a person wrote and sent (the compose page, the API) as
  ordinary mail: not an auto-reply, not a notification or bulk mail, nothing Buzón writes by itself.
  It sets the ticket it answers to Replied, and it is what "answered" means to the unreplied alert
  (buzon.inbound.unreplied).
- A *customer's new mail* (incoming, not automatic) on a Replied or Closed ticket opens it again.

``queue_outgoing`` (buzon.messages.outbox, the one way mail is sent, by the UI, the API and Buzón
itself) calls ``after_outgoing``; the pipeline's route step calls ``after_customer_mail``.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q

from buzon.crm.models import Ticket
from buzon.messages.models import Direction, Message

#: Kinds of outgoing mail (buzon.messages.outbox.KINDS) that are a person writing to the customer.
PERSON_KINDS = ("normal",)


def is_person_reply(kind: str, user: Any) -> bool:
    return kind in PERSON_KINDS and bool(getattr(user, "pk", None))


def person_replies() -> models.QuerySet[Message]:
    """Outgoing mail that was a person's reply (as ``is_person_reply`` judged when it was queued: the
    writer is ``created_by``, the kind is kept with the queued mail)."""
    return Message.objects.filter(direction=Direction.OUTGOING, created_by__isnull=False,
                                  outgoing__kind__in=PERSON_KINDS)


def in_conversation(message: Message) -> Q:
    """Messages of ``message``'s conversation: its record's, or (no record) replies to it."""
    same = Q(in_reply_to=message.message_id) if message.message_id else Q(pk__in=[])
    if message.record_type_id and message.record_id:
        same |= Q(record_type_id=message.record_type_id, record_id=message.record_id)
    return same


def _set_status(ticket: Ticket, status: str) -> bool:
    if ticket.status == status:
        return False
    ticket.status = status
    ticket.save(update_fields=["status", "updated_at"])
    return True


def after_outgoing(record: models.Model | None, *, kind: str, user: Any) -> bool:
    """A mail was queued on ``record``: a person's reply marks its ticket Replied. Returns whether it changed."""
    if isinstance(record, Ticket) and is_person_reply(kind, user):
        return _set_status(record, Ticket.Status.REPLIED)
    return False


def after_customer_mail(record: models.Model | None) -> bool:
    """The customer wrote again on ``record``: a Replied or Closed ticket is open again."""
    if isinstance(record, Ticket) and record.status in (Ticket.Status.REPLIED, Ticket.Status.CLOSED):
        return _set_status(record, Ticket.Status.OPEN)
    return False
