"""Merging two conversations into one, and moving one message out into a conversation of its own.

Both are people's corrections of the threading (a customer who wrote twice about one order; a reply
that was really a new question). Like every workspace action they find the conversations through
``access_conversation`` (invisible = missing = Http404, and nothing changes), keep every message and
every address, run in one transaction, and say what they did in the history.

A merged conversation is not deleted: its row stays, empty and out of every list, with
``merged_into`` pointing at the one it became, so its record's next mail (a ticket's token, a reply
to its messages) and old links find the merged conversation.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import ForeignKey, Model
from django.utils.translation import gettext as _

from buzon.messages import placement
from buzon.messages.conversations import Conversation, ConversationStatus
from buzon.messages.models import Message
from buzon.workspace.access import access_conversation
from buzon.workspace.actions import ActionRefused, _event
from buzon.workspace.models import ConversationRead, EventKind

#: The more active status wins a merge: an open conversation merged into a closed one reopens it.
_ACTIVITY: dict[str, int] = {ConversationStatus.OPEN: 2, ConversationStatus.PENDING: 1,
                             ConversationStatus.CLOSED: 0}


def _locked(pk: int) -> Conversation:
    return Conversation.objects.select_for_update().get(pk=pk)


def repoint(model: type[Model], old_pk: int, new_pk: int) -> None:
    """Every row of any model with a foreign key to ``model`` that points at ``old_pk`` points at
    ``new_pk`` instead (one UPDATE per relation; ``model``'s own references to itself are left to
    the caller). What merges use, so a model added later moves with them."""
    for relation in model._meta.related_objects:
        field = relation.field
        if isinstance(field, ForeignKey) and relation.related_model is not model:
            relation.related_model._default_manager.filter(**{field.name: old_pk}).update(**{field.name: new_pk})


def _move_rows_of(other: Conversation, into: Conversation) -> None:
    """Everything that hangs on ``other`` (messages, history, notes) now hangs on ``into``; read
    marks are per person and conversation, so ``other``'s are dropped (``into`` keeps its own)."""
    ConversationRead.objects.filter(conversation=other).delete()
    repoint(Conversation, other.pk, into.pk)


def do_merge(user: Any, into_id: Any, other_id: Any) -> Conversation:
    """Merge conversation ``other_id`` into ``into_id``: every message, note and history entry of
    the other joins it. Both must be visible to ``user`` and of the same store."""
    into = access_conversation(user, into_id)
    other = access_conversation(user, other_id)
    if into.pk == other.pk:
        raise ActionRefused(_("Choose another conversation to merge into this one."), field="other")
    if into.store_id != other.store_id:
        raise ActionRefused(_("Conversations of different stores cannot be merged: each store's mail stays its "
                              "own."), field="other")
    if into.merged_into_id or other.merged_into_id:
        raise ActionRefused(_("That conversation was already merged into another."), field="other")
    with transaction.atomic():
        # Locked in id order, so two people merging the same pair both ways cannot deadlock.
        locked = {pk: _locked(pk) for pk in sorted((into.pk, other.pk))}
        into, other = locked[into.pk], locked[other.pk]
        if other.merged_into_id or into.merged_into_id:  # merged by someone else meanwhile
            raise ActionRefused(_("That conversation was already merged into another."), field="other")
        moved = Message.objects.filter(conversation=other).count()
        _move_rows_of(other, into)
        Conversation.objects.filter(merged_into=other).update(merged_into=into)  # older merges follow
        status = max((into.status, other.status), key=lambda s: _ACTIVITY.get(s, 0))
        Conversation.objects.filter(pk=into.pk).update(
            status=status, customer_id=into.customer_id or other.customer_id,
            agent_id=into.agent_id or other.agent_id, account_id=into.account_id or other.account_id)
        Conversation.objects.filter(pk=other.pk).update(
            merged_into=into, message_count=0, last_message_at=None, last_incoming_at=None, snippet="",
            status=ConversationStatus.CLOSED)
        placement.recount(into.pk)
        _event(into, user, EventKind.MERGED, other=other.pk, subject=other.subject[:200], messages=moved)
    into.refresh_from_db()
    return into


def do_move_out(user: Any, conversation_id: Any, message_id: Any) -> Conversation:
    """Move one message of the conversation into a new conversation of its own (same store, account
    and customer; no record, no agent yet, open). Replies to that message will then join the new one."""
    conversation = access_conversation(user, conversation_id)
    try:
        number = int(message_id)
    except (TypeError, ValueError):
        raise ActionRefused(_("Choose a message of this conversation."), field="message") from None
    with transaction.atomic():
        conversation = _locked(conversation.pk)
        message = Message.objects.filter(pk=number, conversation_id=conversation.pk).first()
        if message is None:
            raise ActionRefused(_("Choose a message of this conversation."), field="message")
        if not Message.objects.filter(conversation_id=conversation.pk).exclude(pk=message.pk).exists():
            raise ActionRefused(_("This is the conversation's only message: there is nothing to move it out of."),
                                field="message")
        new = Conversation.objects.create(
            store_id=conversation.store_id, account_id=message.account_id or conversation.account_id,
            subject=message.subject[:2000], customer_id=message.customer_id or conversation.customer_id,
            status=ConversationStatus.OPEN)
        Message.objects.filter(pk=message.pk).update(conversation=new)
        placement.recount(conversation.pk)
        placement.recount(new.pk)
        _event(conversation, user, EventKind.SPLIT, message=message.pk, into=new.pk)
        _event(new, user, EventKind.SPLIT, message=message.pk, source=conversation.pk)
    new.refresh_from_db()
    return new
