"""Which conversation each message of a batch answers, decided for the whole batch at once.

run_pipeline looks a reply's parent up among the messages stored before it: mail stored earlier,
and the messages of the same batch that come before it. Here one query finds the stored parents (and
their records), and a parent inside the batch is the context processed before it. The batch is then
cut into generations: messages whose parent is stored (or none) first, then the replies to those,
and so on, so a reply is stored after its parent and can name the parent's id, as one by one.
A parent, stored or in the batch, is looked for only in the receiving account's store.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q

from buzon.crm.records import store_filter
from buzon.inbound import batch_lookups
from buzon.inbound.context import Context, Known
from buzon.inbound.steps import thread
from buzon.messages.models import Message


@dataclass
class Threads:
    """Parents of the batch: stored ones by context, and in-batch ones (a context's parent context)."""

    stored: dict[int, Message] = field(default_factory=dict)  # id(ctx) -> stored parent
    in_batch: dict[int, Context] = field(default_factory=dict)  # id(ctx) -> parent context
    generations: list[list[Context]] = field(default_factory=list)


Key = tuple[int | None, str]  # (store, Message-ID)


def _stored_parents(ids: set[Key], known: Known) -> dict[Key, Message]:
    """(store, Message-ID) -> the first stored message of that store with it (as run_pipeline's
    lookup), records attached."""
    by_store: dict[int | None, set[str]] = {}
    for store_id, message_id in ids:
        by_store.setdefault(store_id, set()).add(message_id)
    condition = Q(pk__in=[])
    for store_id, mids in by_store.items():
        condition |= Q(Q(message_id__in=mids) | Q(provider_message_id__in=mids), **store_filter(store_id))
    by_id: dict[Key, int] = {}
    if ids:
        for pk, store_id, message_id, provider_id in Message.objects.filter(condition).order_by("id").values_list(
                "pk", "store_id", "message_id", "provider_message_id"):
            by_id.setdefault((store_id, message_id), pk)
            if provider_id:
                by_id.setdefault((store_id, provider_id), pk)
    by_id = {k: v for k, v in by_id.items() if k in ids}
    if not by_id:
        return {}
    rows = Message.objects.only("id", "direction", "record_type_id", "record_id", "conversation_id").in_bulk(
        set(by_id.values()))
    batch_lookups.attach_records(known, list(rows.values()))  # what parent.record would fetch, fetched once
    return {k: rows[v] for k, v in by_id.items() if v in rows}


def resolve(contexts: list[Context], known: Known, copies: dict[int, Context] | None = None) -> Threads:
    """Every context's parent and generation. ``contexts`` are in raw order, none stored yet.

    ``copies`` maps a duplicate (by id) to the earlier copy of the same mail, which it must follow:
    whether it is a duplicate or imported in its own right depends on what became of that one."""
    copies = copies or {}
    refs = {id(c): [(c.store_id, i) for i in thread.reference_ids(c)] for c in contexts}
    stored = _stored_parents({i for ids in refs.values() for i in ids}, known)
    found = Threads()
    earlier: dict[Key, Context] = {}
    generation: dict[int, int] = {}
    sender_level: dict[str, int] = {}
    for ctx in contexts:
        # Never before the first message of the same sender: that one creates the customer.
        level = sender_level.get(ctx.message.from_address, 0)
        for message_id in refs[id(ctx)]:
            if message_id in stored:
                found.stored[id(ctx)] = stored[message_id]
                break
            if message_id in earlier:
                parent = earlier[message_id]
                found.in_batch[id(ctx)] = parent
                level = max(level, generation[id(parent)] + 1)
                break
        if id(ctx) in copies:
            level = max(level, generation[id(copies[id(ctx)])] + 1)
        generation[id(ctx)] = level
        sender_level.setdefault(ctx.message.from_address, level)
        if ctx.message.message_id:
            earlier.setdefault((ctx.store_id, ctx.message.message_id), ctx)
        while len(found.generations) <= level:
            found.generations.append([])
        found.generations[level].append(ctx)
    return found
