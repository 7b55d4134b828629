"""Give every message written before conversations existed its conversation, with the same rule as
buzon.messages.placement: its record's conversation, else the one of the message it answers (by
In-Reply-To within its store), else a new one.

Messages are read in ranges of primary keys in id order (a parent is older than its reply), each
range committed on its own (``atomic = False``): a million-row table is neither one long
transaction nor one huge UPDATE, and an interrupted run resumes (only messages still without a
conversation are touched). The conversations' counters are then computed per range of
conversation ids from their own messages (the (conversation, created_at, id) index).
"""

import re

from django.db import migrations, transaction
from django.db.models import Count, Max, Min, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils.html import strip_tags

BATCH = 5000
SPACE = re.compile(r"\s+")


def _snippet(text, html):
    return SPACE.sub(" ", text or strip_tags(html or "")).strip()[:200]


def _assign(Message, Conversation, rows):
    records = {(r["record_type_id"], r["record_id"]) for r in rows if r["record_type_id"] and r["record_id"]}
    by_record = {}
    if records:
        condition = Q(pk__in=[])
        for type_id, record_id in records:
            condition |= Q(record_type_id=type_id, record_id=record_id)
        by_record = {(t, r): pk for pk, t, r in Conversation.objects.filter(condition).values_list(
            "pk", "record_type_id", "record_id")}
    replies = {r["in_reply_to"] for r in rows if r["in_reply_to"]}
    by_message_id = {}
    if replies:
        for store_id, message_id, conversation_id in Message.objects.filter(
                message_id__in=replies, conversation__isnull=False).order_by("id").values_list(
                "store_id", "message_id", "conversation_id"):
            by_message_id.setdefault((store_id, message_id), conversation_id)
    chosen = {}
    for row in rows:
        key = (row["record_type_id"], row["record_id"]) if row["record_type_id"] and row["record_id"] else None
        if key is not None and key not in by_record:
            by_record[key] = Conversation.objects.create(
                store_id=row["store_id"], subject=row["subject"][:2000], customer_id=row["customer_id"],
                agent_id=row["agent_id"], record_type_id=key[0], record_id=key[1]).pk
        if key is not None:
            conversation_id = by_record[key]
        elif row["in_reply_to"] and (row["store_id"], row["in_reply_to"]) in by_message_id:
            conversation_id = by_message_id[(row["store_id"], row["in_reply_to"])]
        else:
            conversation_id = Conversation.objects.create(
                store_id=row["store_id"], subject=row["subject"][:2000], customer_id=row["customer_id"],
                agent_id=row["agent_id"]).pk
        chosen.setdefault(conversation_id, []).append(row["id"])
        if row["message_id"]:
            by_message_id.setdefault((row["store_id"], row["message_id"]), conversation_id)
    for conversation_id, ids in chosen.items():
        Message.objects.filter(pk__in=ids).update(conversation_id=conversation_id)


def _counters(Message, Conversation, low, high):
    messages = Message.objects.filter(conversation_id=OuterRef("pk"))
    # As placement: the snippet and last activity are a customer's mail or a person's, not automatic mail.
    latest = messages.filter(Q(direction="in", classification="normal") | Q(created_by__isnull=False)).order_by(
        "-created_at", "-id")
    Conversation.objects.filter(pk__gte=low, pk__lt=high).update(
        message_count=Subquery(messages.order_by().values("conversation_id").annotate(n=Count("id")).values("n")[:1]),
        last_message_at=Coalesce(Subquery(latest.values("created_at")[:1]),
                                 Subquery(messages.filter(direction="in").order_by("-created_at")
                                          .values("created_at")[:1])),
        last_incoming_at=Subquery(messages.filter(direction="in").order_by("-created_at").values("created_at")[:1]),
        customer_id=Subquery(messages.filter(customer__isnull=False).order_by("id").values("customer_id")[:1]),
        agent_id=Subquery(messages.filter(agent__isnull=False).order_by("id").values("agent_id")[:1]),
    )
    rows = Conversation.objects.filter(pk__gte=low, pk__lt=high).annotate(
        text=Subquery(latest.values("text")[:1]), html=Subquery(latest.values("html")[:1]))
    for conversation in rows.only("id"):
        Conversation.objects.filter(pk=conversation.pk).update(snippet=_snippet(conversation.text, conversation.html))


def fill(apps, schema_editor):
    Message = apps.get_model("messages_app", "Message")
    Conversation = apps.get_model("messages_app", "Conversation")
    db = schema_editor.connection.alias
    bounds = Message.objects.using(db).filter(conversation__isnull=True).aggregate(low=Min("id"), high=Max("id"))
    if bounds["low"] is None:
        return
    fields = ("id", "record_type_id", "record_id", "in_reply_to", "message_id", "store_id", "subject",
              "customer_id", "agent_id")
    for low in range(bounds["low"], bounds["high"] + 1, BATCH):
        with transaction.atomic(using=db):
            rows = list(Message.objects.using(db).filter(id__gte=low, id__lt=low + BATCH,
                                                         conversation__isnull=True).order_by("id").values(*fields))
            if rows:
                _assign(Message.objects.using(db).model, Conversation, rows)
    span = Conversation.objects.using(db).aggregate(low=Min("id"), high=Max("id"))
    if span["low"] is None:
        return
    for low in range(span["low"], span["high"] + 1, BATCH):
        with transaction.atomic(using=db):
            _counters(Message, Conversation, low, low + BATCH)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("workspace", "0001_initial"),
        ("messages_app", "0005_conversations"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
