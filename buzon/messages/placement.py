"""Which conversation a message joins, and the conversation's activity kept current with it.

The rule, one place for every path that writes mail (the pipeline one by one and in bulk, the
outbox, the data migration): a message with a record joins that record's conversation (made with
the record's first message); else the conversation of the message it answers; else it starts one.

Counters and last activity change by one UPDATE per conversation relative to the row (never a
COUNT, never read-modify-write), so two workers adding mail to one conversation cannot lose a count.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.html import strip_tags

from buzon.crm.records import store_filter
from buzon.messages.conversations import SNIPPET_LENGTH, Conversation, ConversationStatus
from buzon.messages.models import Classification, Direction, Message
from buzon.sync.fastinsert import column, insert_rows_returning, update_rows

_SPACE_RE = re.compile(r"\s+")


def snippet(message: Message) -> str:
    text = message.text or strip_tags(message.html or "")
    return collapsed_start(text, SNIPPET_LENGTH)


def collapsed_start(text: str, length: int) -> str:
    """``text`` with each run of white space made one space, stripped, cut to ``length``: read from
    as much of its start as that needs, not from all of a message's text (a long quoted history
    made the inbox snippet cost as much as the rest of writing a message's conversation).

    Exact: collapsing a start of the text gives a start of the collapsed text (a run cut in two is
    one space either way), so once that holds more than ``length`` characters after stripping, the
    first ``length`` of them are the answer's."""
    if length <= 0:  # nothing to read ahead for
        return _SPACE_RE.sub(" ", text).strip()[:length]
    size = 2 * length
    while True:
        found = _SPACE_RE.sub(" ", text[:size]).strip()
        if len(found) > length or size >= len(text):
            return found[:length]
        size *= 4


def _record_key(message: Message) -> tuple[int, int] | None:
    if message.record_type_id and message.record_id:
        return (message.record_type_id, message.record_id)
    return None


def _new(message: Message, record: tuple[int, int] | None) -> Conversation:
    return Conversation(
        store_id=message.store_id, account_id=message.account_id,
        subject=message.subject[:2000], customer_id=message.customer_id,
        agent_id=message.agent_id, record_type_id=record[0] if record else None,
        record_id=record[1] if record else None,
    )


#: The conversation outgoing mail written in this context joins (``joining``): the workspace's reply.
_JOINING: ContextVar[int | None] = ContextVar("buzon_joining_conversation", default=None)


@contextmanager
def joining(conversation_id: int) -> Iterator[None]:
    """Outgoing mail queued inside joins ``conversation_id`` whatever it names: a reply written in a
    conversation belongs to it even when its account or references would have started another."""
    token = _JOINING.set(conversation_id)
    try:
        yield
    finally:
        _JOINING.reset(token)


def joined() -> int | None:
    """The conversation ``joining`` names in this context, if any."""
    return _JOINING.get()


def _answered_conversation(message: Message) -> int | None:
    """Outgoing mail names what it answers by Message-ID (the outbox resolved it through the sender's
    visibility); a reply joins that message's conversation, within the sending store only."""
    if message.direction != Direction.OUTGOING or not message.in_reply_to:
        return None
    return Message.objects.filter(message_id=message.in_reply_to, conversation__isnull=False,
                                  **store_filter(message.store_id)).order_by("id").values_list(
        "conversation_id", flat=True).first()


def place(message: Message, parent: Message | None = None) -> None:
    """Give an unsaved ``message`` its conversation (made now if it starts one)."""
    if message.conversation_id is not None:
        return
    if message.direction == Direction.OUTGOING and _JOINING.get() is not None:
        message.conversation_id = _JOINING.get()
        return
    record = _record_key(message)
    if record is not None:
        row = Conversation.objects.filter(record_type_id=record[0], record_id=record[1]).values_list(
            "pk", "merged_into_id").first()
        found = (row[1] or row[0]) if row else None  # a merged record's mail joins what it became
        if found is None:
            conversation, _ = Conversation.objects.get_or_create(
                record_type_id=record[0], record_id=record[1], defaults={
                    f.attname: getattr(_new(message, record), f.attname)
                    for f in Conversation._meta.concrete_fields if f.attname not in ("id", "created_at")})
            found = conversation.pk
        message.conversation_id = found
    elif parent is not None and parent.conversation_id is not None:
        message.conversation_id = parent.conversation_id
    elif parent is None and (found := _answered_conversation(message)) is not None:
        message.conversation_id = found
    else:
        message.conversation_id = Conversation.objects.create(**{
            f.attname: getattr(_new(message, None), f.attname)
            for f in Conversation._meta.concrete_fields if f.attname not in ("id", "created_at")}).pk


def place_many(messages: Sequence[tuple[Message, Message | None]]) -> list[Conversation]:
    """``place`` for a batch of unsaved messages (message, parent): one query for the records'
    conversations, one insert for the new ones (returned: ``record_activity`` counts into them)."""
    records = {key for m, _ in messages if m.conversation_id is None and (key := _record_key(m))}
    by_record: dict[tuple[int, int], int] = {}
    if records:
        condition = Q(pk__in=[])
        for type_id, record_id in records:
            condition |= Q(record_type_id=type_id, record_id=record_id)
        for pk, found_type, found_id, merged_into in Conversation.objects.filter(condition).values_list(
                "pk", "record_type_id", "record_id", "merged_into_id"):
            by_record[(found_type or 0, found_id or 0)] = merged_into or pk  # both set: filtered on them
    new: dict[Any, Conversation] = {}
    waiting: list[tuple[Message, Any]] = []
    for message, parent in messages:
        if message.conversation_id is not None:
            continue
        record = _record_key(message)
        if record is not None and record in by_record:
            message.conversation_id = by_record[record]
        elif record is None and parent is not None and parent.conversation_id is not None:
            message.conversation_id = parent.conversation_id
        else:
            new_key: Any = record if record is not None else id(message)
            new.setdefault(new_key, _new(message, record))
            waiting.append((message, new_key))
    if new:
        insert_rows_returning(list(new.values()))
    for message, key in waiting:
        message.conversation_id = new[key].pk
    return list(new.values())


def _reopens(message: Message) -> bool:
    return message.direction == Direction.INCOMING and message.classification == Classification.NORMAL


def _arrival(message: Message) -> tuple[int, Any, int]:
    # Received mail in the order it arrived (its raw row), whatever order a batch stored it in.
    return (message.raw_id or 0, message.created_at, message.pk or 0)


def _shown(message: Message) -> bool:
    """Whether the message is what the inbox shows as the conversation's latest: a customer's mail
    or a person's reply. Automatic mail (bounces, auto-replies, lists; Buzón's own auto-replies and
    notices) adds to the count, and received automatic mail to "unread", but is not the snippet."""
    if message.direction == Direction.INCOMING:
        return message.classification == Classification.NORMAL
    return message.created_by_id is not None


def _fill_fresh(conversation: Conversation, added: list[Message]) -> None:
    """What ``record_activity``'s UPDATE would make of a conversation this transaction created."""
    shown = [m for m in added if _shown(m)]
    incoming = [m for m in added if m.direction == Direction.INCOMING]
    conversation.message_count = len(added)
    received = [m for m in added if m.direction == Direction.INCOMING]
    conversation.last_message_at = max((m.created_at for m in shown or received), default=None)
    conversation.snippet = snippet(shown[-1]) if shown else ""
    conversation.last_incoming_at = max((m.created_at for m in incoming), default=None)
    conversation.customer_id = conversation.customer_id or next(
        (m.customer_id for m in reversed(added) if m.customer_id), None)
    conversation.agent_id = conversation.agent_id or next((m.agent_id for m in reversed(added) if m.agent_id), None)
    conversation.updated_at = timezone.now()


FRESH_FIELDS = ["message_count", "last_message_at", "snippet", "last_incoming_at", "customer", "agent", "updated_at"]


def record_activity(messages: Iterable[Message], fresh: Iterable[Conversation] = ()) -> None:
    """Saved ``messages`` were added to their conversations: one UPDATE per conversation, except
    for ``fresh`` ones (made by place_many in this transaction, seen by no one else yet), written
    together in one bulk update."""
    grouped: dict[int, list[Message]] = {}
    for message in messages:
        if message.conversation_id is not None:
            grouped.setdefault(message.conversation_id, []).append(message)
    new = [c for c in fresh if c.pk in grouped]
    for conversation in new:
        _fill_fresh(conversation, sorted(grouped.pop(conversation.pk), key=_arrival))
    if new:
        update_rows(new, FRESH_FIELDS)
    if not grouped:
        return
    rows = []
    for conversation_id, added in grouped.items():
        added.sort(key=_arrival)
        shown = [m for m in added if _shown(m)]
        received = [m for m in added if m.direction == Direction.INCOMING]
        # 1: only automatic mail received (a bounce, an auto-reply): listed, for someone to look at;
        # 2: mail a person wrote; 0: only Buzón's own automatic mail (a notice to an agent): no
        # activity for people, not listed.
        kind, at = (2, max(m.created_at for m in shown)) if shown else (
            (1, max(m.created_at for m in received)) if received else (0, None))
        last_in = max((m.created_at for m in received), default=None)
        rows.append([len(added), _datetime(timezone.now()), kind, *[_datetime(at)] * 3, kind, _datetime(at),
                     snippet(shown[-1]) if shown else "", *[_datetime(last_in)] * 3,
                     any(_reopens(m) for m in added), str(ConversationStatus.OPEN),
                     next((m.customer_id for m in reversed(added) if m.customer_id), None),
                     next((m.agent_id for m in reversed(added) if m.agent_id), None), conversation_id])
    with connection.cursor() as cursor:
        cursor.executemany(_activity_sql(connection.vendor), rows)


def _datetime(value: Any) -> Any:
    return None if value is None else connection.ops.adapt_datetimefield_value(value)


@functools.cache
def _activity_sql(vendor: str) -> str:
    """``record_activity``'s UPDATE of a conversation that existed before, relative to what the row
    holds (so two workers adding mail to one conversation cannot lose a count), one text for every
    conversation (one executemany, where an ORM update() per conversation compiled its expressions
    each time). Its parameters: count added, now, kind, its time three times, kind, time, snippet,
    latest incoming time three times, reopen, the open status, customer, agent, id."""
    def q(name: str) -> str:
        return column(Conversation, name)

    greatest = "GREATEST" if vendor == "postgresql" else "MAX"  # both arguments non-null where used
    count, last, last_in, snip = q("message_count"), q("last_message_at"), q("last_incoming_at"), q("snippet")
    return (
        f"UPDATE {connection.ops.quote_name(Conversation._meta.db_table)} SET {count} = {count} + %s, "  # noqa: S608  # nosec B608
        f"{q('updated_at')} = %s, "
        f"{last} = CASE %s WHEN 1 THEN COALESCE({last}, %s) WHEN 2 THEN {greatest}(COALESCE({last}, %s), %s) "
        f"ELSE {last} END, "
        # the snippet of mail newer than what the row holds (all SET expressions read the old row)
        f"{snip} = CASE WHEN %s = 2 AND ({last} IS NULL OR {last} <= %s) THEN %s ELSE {snip} END, "
        f"{last_in} = CASE WHEN %s IS NULL THEN {last_in} ELSE {greatest}(COALESCE({last_in}, %s), %s) END, "
        f"{q('status')} = CASE WHEN %s THEN %s ELSE {q('status')} END, "
        f"{q('customer')} = COALESCE({q('customer')}, %s), {q('agent')} = COALESCE({q('agent')}, %s) "
        f"WHERE {q('id')} = %s")


def recount(conversation_id: int) -> None:
    """Count, activity and snippet of a conversation again from its messages, after a person moved
    messages in or out of it (a merge, a message moved out): never on the path of arriving mail."""
    conversation = Conversation.objects.get(pk=conversation_id)
    messages = sorted(Message.objects.filter(conversation_id=conversation_id).only(
        "id", "raw_id", "created_at", "direction", "classification", "created_by_id", "customer_id", "agent_id",
        "subject", "text", "html"), key=_arrival)
    _fill_fresh(conversation, messages)
    Conversation.objects.filter(pk=conversation_id).update(
        message_count=conversation.message_count, last_message_at=conversation.last_message_at,
        snippet=conversation.snippet, last_incoming_at=conversation.last_incoming_at,
        customer_id=conversation.customer_id, agent_id=conversation.agent_id, updated_at=conversation.updated_at)


def adopt_agent(message: Message) -> None:
    """The message was given an agent after it was stored: an unassigned conversation takes them."""
    if message.conversation_id is not None and message.agent_id is not None:
        Conversation.objects.filter(pk=message.conversation_id, agent__isnull=True).update(
            agent_id=message.agent_id, updated_at=timezone.now())
