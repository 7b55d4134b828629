"""What a batch looks up once for all its messages, so the steps find it without a query each.

Per message, run_pipeline's steps look up our sent mail (an X-Buzon-Ref on a copy of what Buzón
sent; the message a bounce returns) and the records a subject token or plus address names. Here one
query per kind does it for a whole batch and the answers go into ``Context.known``, where the steps
(deduplicate, classify, thread) look first. Each row is one Python object for the whole batch, so a
change one message makes (a ticket reopened, a sent message marked bounced, a provider's Message-ID
remembered) is what the next message sees, as when they run one after another. What is fetched here
is of any store; the steps keep only what belongs to the receiving account's store, with the same
code as one by one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.contrib.contenttypes.models import ContentType
from django.db.models import Max, Model, Q

from buzon.inbound.context import Context, Known
from buzon.inbound.mail import bounce
from buzon.inbound.steps import classify, deduplicate, thread
from buzon.messages.models import Direction, Message


def prefetch(contexts: list[Context]) -> Known:
    """Look up the batch's sent mail and named records; every context gets the same Known."""
    known = Known()
    pks: set[int] = set()
    message_ids: set[tuple[int | None, str]] = set()  # (store, Message-ID) a bounce returns
    named: set[tuple[type[Model], int]] = set()
    for ctx in contexts:
        ctx.known = known
        pk = deduplicate.sent_ref(ctx)
        if pk is not None:
            pks.add(pk)
        found = known.bounces[ctx.raw.pk] = bounce.detect(ctx.mail, ctx.own_addresses)
        if found is not None:
            pk = classify.bounced_ref(found)
            if pk is not None:
                pks.add(pk)
            if found.original_message_id:
                message_ids.add((ctx.store_id, found.original_message_id))
        named.update((n.target.model, n.record_id) for n in thread.named_records(ctx))
    _outgoing(known, pks, message_ids)
    load_records(known, named)
    for model in {model for model, pk in named if known.records[(model, pk)] is None}:
        known.highest_id[model] = model._default_manager.aggregate(highest=Max("pk"))["highest"] or 0
    attach_records(known, [m for m in known.outgoing.values() if m is not None])
    return known


def _outgoing(known: Known, pks: set[int], message_ids: set[tuple[int | None, str]]) -> None:
    """Our sent mail the batch names, of any store: the steps keep only their own store's."""
    known.outgoing.update(dict.fromkeys(pks))
    if not pks and not message_ids:
        return
    mids = {mid for _, mid in message_ids}
    rows = Message.objects.filter(direction=Direction.OUTGOING).filter(
        Q(pk__in=pks) | Q(message_id__in=mids) | Q(provider_message_id__in=mids))
    known.outgoing.update({m.pk: m for m in rows})
    known.outgoing_by_message_id.update(dict.fromkeys(message_ids))


def index_sent_message_ids(known: Known) -> None:
    """Which sent message of its store each bounce's returned Message-ID names, as classify's query
    picks it (the newest first). Computed from the rows in memory after the batch's copies of our
    sent mail have given them the Message-IDs their providers chose."""
    for store_id, mid in known.outgoing_by_message_id:
        matches = [m for m in known.outgoing.values()
                   if m is not None and m.store_id == store_id and mid in (m.message_id, m.provider_message_id)]
        known.outgoing_by_message_id[(store_id, mid)] = max(matches, key=lambda m: (m.created_at, m.pk),
                                                            default=None)


def load_records(known: Known, keys: Iterable[tuple[type[Model], int]]) -> None:
    """Fetch the records not looked up yet, one query per model; a missing one is kept as None."""
    wanted: dict[type[Model], set[int]] = defaultdict(set)
    for model, pk in keys:
        if (model, pk) not in known.records:
            wanted[model].add(pk)
    for model, pks in wanted.items():
        found = model._default_manager.in_bulk(pks)
        for pk in pks:
            known.records[(model, pk)] = found.get(pk)


def attach_records(known: Known, messages: list[Message]) -> None:
    """Give each message its record (the batch's one instance of it), so ``message.record`` costs
    no query."""
    keyed = []
    for message in messages:
        if message.record_type_id and message.record_id:
            model = ContentType.objects.get_for_id(message.record_type_id).model_class()
            if model is not None:
                keyed.append((message, (model, int(message.record_id))))
    load_records(known, [key for _, key in keyed])
    for message, key in keyed:
        record = known.records[key]
        if record is not None:
            message.record = record
