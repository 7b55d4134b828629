"""What people do with a conversation: one function per change, called by the web UI and the API.

Each action (Zulip's ``do_*``) takes the acting user and the conversation's id, finds it through
``access_conversation`` (an invisible conversation is a missing one: Http404), changes the rows, and
writes the conversation's history entry, all in one transaction. Views only parse the request.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from buzon.core import keyset
from buzon.crm import roles
from buzon.crm.models import Agent
from buzon.mailboxes.models import EmailAccount
from buzon.messages import placement
from buzon.messages.conversations import Conversation, ConversationStatus, touch
from buzon.messages.models import Direction, Message
from buzon.messages.outbox import SendRefused, queue_outgoing
from buzon.workspace.access import access_conversation
from buzon.workspace.mentions import notify_mentioned
from buzon.workspace.models import ConversationEvent, ConversationNote, ConversationRead, EventKind

#: A note longer than this is refused (a note is a few lines for colleagues, not a document).
NOTE_MAX_LENGTH = 10000


class ActionRefused(ValueError):
    """The change cannot be made as asked; ``field`` names what to correct (for a 400 or a form)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message, self.field = message, field


def _event(conversation: Conversation, user: Any, kind: str, **params: Any) -> None:
    ConversationEvent.objects.create(conversation=conversation, actor=user if getattr(user, "pk", None) else None,
                                     kind=kind, params=params)
    touch(conversation.pk)  # every history entry is a change open pages show (buzon.workspace.live)


def answered_message(conversation: Conversation, thread: list[Message] | None = None) -> Message | None:
    """What a reply answers: the customer's latest mail, else (nothing received yet) the latest message.
    ``thread``: the conversation's every message, oldest first, when the caller has them."""
    if thread is not None:
        return next((m for m in reversed(thread) if m.direction == Direction.INCOMING), thread[-1] if thread else None)
    messages = Message.objects.filter(conversation=conversation).order_by("-created_at", "-id")
    return messages.filter(direction=Direction.INCOMING).first() or messages.first()


def _reply_subject(subject: str) -> str:
    return subject if subject[:3].lower() == "re:" else f"Re: {subject}".strip()


def _own_addresses(addresses: set[str]) -> set[str]:
    """Those of ``addresses`` (in lower case) that are Buzón's own mailboxes: a reply-all never writes
    to them (the mail would come back as new mail). One query, none for no address."""
    if not addresses:
        return set()
    own = EmailAccount.objects.annotate(address=Lower("email_address")).filter(address__in=addresses)
    return set(own.values_list("address", flat=True))


def reply_all_cc(parent: Message, to: list[str]) -> list[str]:
    """Everyone else the answered mail was addressed to, once each, but Buzón's own mailboxes and
    those already in ``to``."""
    skip = {a.lower() for a in to}
    candidates = [a for a in [*(parent.to or []), *(parent.cc or [])] if a and a.lower() not in skip]
    skip |= _own_addresses({a.lower() for a in candidates})
    cc: list[str] = []
    for address in candidates:
        if address.lower() not in skip:
            skip.add(address.lower())
            cc.append(address)
    return cc


def do_reply(user: Any, conversation_id: Any, *, text: str, html: str = "", reply_all: bool = False) -> Message:
    """Queue ``user``'s reply in the conversation, through the outbox (the account today's rules choose,
    In-Reply-To the customer's latest mail); the conversation waits for the customer (pending).
    ``reply_all``: the answered mail's other recipients in Cc (`reply_all_cc`)."""
    conversation = access_conversation(user, conversation_id)
    if not text.strip() and not html.strip():
        raise ActionRefused(_("Write the reply first."), field="text")
    parent = answered_message(conversation)
    if parent is None:
        raise ActionRefused(_("This conversation has no message to answer."), field="conversation")
    if parent.direction == Direction.INCOMING:
        to = [a for a in (parent.reply_to or [parent.from_address]) if a]
    else:
        to = list(parent.to)
    with transaction.atomic():
        try:
            with placement.joining(conversation.pk):
                message = queue_outgoing(to=to, subject=_reply_subject(parent.subject or conversation.subject),
                                         cc=reply_all_cc(parent, to) if reply_all else (),
                                         text=text, html=html, in_reply_to=parent, user=user)
        except SendRefused as refused:
            raise ActionRefused(str(refused), field=getattr(refused, "field", "") or "text") from refused
        Conversation.objects.filter(pk=conversation.pk).update(status=ConversationStatus.PENDING)
        _event(conversation, user, EventKind.REPLIED, message=message.pk)
        _mark_read(user, conversation)
    return message


def do_set_status(user: Any, conversation_id: Any, status: str, *, seen_incoming_at: Any = None) -> Conversation:
    """Set the conversation's status. ``seen_incoming_at`` is the customer's latest mail the person
    had on screen (the page's or the API's ``last_incoming_at``): when newer mail arrived since, a
    close or a wait for the customer is refused, so mail racing the change leaves it open and is
    read first. The row is locked, so the customer's mail cannot slip between the check and the change."""
    conversation = access_conversation(user, conversation_id)
    if status not in ConversationStatus.values:
        raise ActionRefused(_("Choose open, pending or closed."), field="status")
    seen = _moment(seen_incoming_at)
    if seen is None and seen_incoming_at not in (None, ""):
        raise ActionRefused(_("Give the time of the latest mail you read as the conversation gave it."),
                            field="seen_incoming_at")
    with transaction.atomic():
        current = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if (status != ConversationStatus.OPEN and seen_incoming_at not in (None, "")
                and seen is not None and current.last_incoming_at is not None and current.last_incoming_at > seen):
            raise ActionRefused(_("New mail from the customer arrived while you were reading: it stays open. "
                                  "Read it first."), field="status")
        if current.status != status:
            Conversation.objects.filter(pk=conversation.pk).update(status=status)
            _event(conversation, user, EventKind.STATUS, old=current.status, new=status)
        conversation.status = status
    return conversation


def _moment(value: Any) -> dt.datetime | None:
    """A moment as a page or an API client sends it back (ISO 8601); None when it is not one."""
    if isinstance(value, dt.datetime):
        return value
    if str(value).strip() == "none":  # the page showed no mail from the customer yet
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    parsed = keyset.moment(str(value)) if value not in (None, "") else None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, dt.UTC)
    return parsed


def assignable_agents(conversation: Conversation) -> list[Agent]:
    """Agents who may be given the conversation: those of its store (any agent for store-less mail)."""
    agents = Agent.objects.select_related("user").order_by("user__username")
    if conversation.store_id is not None:
        agents = agents.filter(stores=conversation.store_id)
    return list(agents)


def do_assign(user: Any, conversation_id: Any, agent_id: Any) -> Conversation:
    """Give the conversation to an agent of its store (or to no one: ``agent_id`` empty)."""
    conversation = access_conversation(user, conversation_id)
    agent: Agent | None = None
    if agent_id not in (None, ""):
        agent = next((a for a in assignable_agents(conversation) if str(a.pk) == str(agent_id)), None)
        if agent is None or not (roles.is_admin(user) or roles.agent_of(user) is not None):
            raise ActionRefused(_("Choose an agent of this conversation's store."), field="agent")
    with transaction.atomic():
        if conversation.agent_id != (agent.pk if agent else None):
            Conversation.objects.filter(pk=conversation.pk).update(agent=agent)
            _event(conversation, user, EventKind.ASSIGNED, old=conversation.agent_id, new=agent.pk if agent else None)
            conversation.agent = agent
    return conversation


def do_add_note(user: Any, conversation_id: Any, text: str) -> ConversationNote:
    """Add ``user``'s internal note to the conversation: never mailed, seen by everyone who may see
    the conversation. Each colleague it @mentions who may see the conversation is told through the
    bell (buzon.workspace.mentions); anyone else named is told nothing, and the note saves alike."""
    conversation = access_conversation(user, conversation_id)
    text = (text or "").strip()
    if not text:
        raise ActionRefused(_("Write the note first."), field="text")
    if len(text) > NOTE_MAX_LENGTH:
        raise ActionRefused(_("A note holds at most %(count)d characters.") % {"count": NOTE_MAX_LENGTH},
                            field="text")
    with transaction.atomic():
        note = ConversationNote.objects.create(conversation=conversation, author=user if user.pk else None,
                                               text=text)
        _event(conversation, user, EventKind.NOTE, note=note.pk)
        notify_mentioned(user, conversation, note.pk, text)
    return note


def _mark_read(user: Any, conversation: Conversation) -> None:
    """One statement (an insert that updates the row already there), whatever two tabs do at once."""
    table = ConversationRead._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} (user_id, conversation_id, last_read_at) VALUES (%s, %s, %s) "  # noqa: S608  # nosec B608  # the model's own table name
                       "ON CONFLICT (user_id, conversation_id) DO UPDATE SET last_read_at = excluded.last_read_at",
                       [user.pk, conversation.pk, connection.ops.adapt_datetimefield_value(timezone.now())])


def do_mark_read(user: Any, conversation_id: Any) -> Conversation:
    """``user`` has read the conversation up to now: it is no longer unread for them."""
    conversation = access_conversation(user, conversation_id)
    _mark_read(user, conversation)
    return conversation


def mark_opened(user: Any, conversation: Conversation) -> None:
    """``user`` opened ``conversation``, as ``access_conversation`` gave it to them: read up to now."""
    _mark_read(user, conversation)


def do_mark_unread(user: Any, conversation_id: Any) -> Conversation:
    """``user`` wants the conversation back as unread (for them only): it is, if the customer ever
    wrote in it (a conversation with no received mail has nothing to read)."""
    conversation = access_conversation(user, conversation_id)
    ConversationRead.objects.filter(user_id=user.pk, conversation=conversation).delete()
    return conversation
