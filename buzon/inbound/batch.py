"""Many raw messages at once: plain new mail in bulk, everything else through run_pipeline.

Per message, the pipeline costs about ten ORM queries; the ORM's own work per query (not SQLite's)
is most of the time. Mail arriving in a sync chunk is mostly plain: new, readable, written by a person,
starting a conversation or from a known customer. For those, this runner makes the same decisions
with the same step code, but reads (duplicates, threads, customers) and writes (customers, records,
messages, attachments, raw status) once per batch. The steps after ``store`` (assign, notify,
auto-reply) run per message as usual.

Anything else goes through ``run_pipeline`` one message at a time after the batch: a reprocessed,
unreadable, duplicate, automated or threaded message, a skipped sender, a record type without a bulk
builder. If anything in the bulk part raises, its transaction rolls back and the whole chunk goes
through ``run_pipeline``, so a failure still marks one message, never the batch.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.db import connection, transaction
from django.db.models import Model

from buzon.crm import records
from buzon.crm.models import Customer, CustomerEmail
from buzon.inbound import batch_threads, cache
from buzon.inbound.context import Context, StopPipeline
from buzon.inbound.mail import bounce
from buzon.inbound.pipeline import STEPS, run_pipeline
from buzon.inbound.reprocess import import_skipped_from
from buzon.inbound.steps import classify, customer, deduplicate, parse, route, store, thread
from buzon.messages import targets
from buzon.messages.models import Attachment, Direction, Message
from buzon.sync.models import RawMessage

logger = logging.getLogger(__name__)

CHUNK = 200
#: Seconds spent per stage of the bulk path since the process started (bench/bench_pipeline.py prints them).
STAGE_SECONDS: dict[str, float] = {}
T = TypeVar("T")
AFTER_STORE = STEPS[STEPS.index(store) + 1:]


def run_batch(raw_ids: Iterable[int]) -> Counter[str]:
    """Process the raw messages; returns how many ended processed, duplicate, skipped, ..."""
    outcomes: Counter[str] = Counter()
    ids = list(dict.fromkeys(raw_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        try:
            done, rest = _bulk(chunk)
        except Exception:  # the chunk's transaction rolled back: every message goes the careful way
            logger.exception("bulk processing failed; processing %s messages one by one", len(chunk))
            done, rest = 0, chunk
        outcomes["processed"] += done
        for raw_id in rest:
            outcomes[run_pipeline(raw_id)] += 1
    return outcomes


def _plain(ctx: Context) -> bool:
    """Whether the bulk path makes this message's decisions exactly as run_pipeline would."""
    mail = ctx.mail
    if bounce.is_bounce_like(mail) or mail.header(targets.REF_HEADER.lower()):
        return False
    if ctx.account is None or ctx.account.auto_link:
        if targets.find_record_tokens(mail.subject):
            return False
        if any(targets.parse_plus_address(a) for a in (*mail.to, *mail.cc)):
            return False
    return True


def _parsed(raws: list[RawMessage], rest: list[int]) -> list[Context]:
    contexts = []
    for raw in raws:
        ctx = Context(raw=raw, account=cache.account(raw.account_id), message=Message(direction=Direction.INCOMING),
                      own_addresses=cache.own_addresses())
        try:
            parse.run(ctx)
        except (StopPipeline, ValueError, LookupError, RecursionError):
            rest.append(raw.pk)
            continue
        ctx.message.dedupe_key = deduplicate.dedupe_key(ctx)
        contexts.append(ctx)
    return contexts


def _new_only(contexts: list[Context], rest: list[int]) -> list[Context]:
    """Drop duplicates (stored, or earlier in the batch) and what only run_pipeline decides right.

    Those run one by one after the batch, so a later message of the batch that depends on one of
    them (answers it, or comes from the same sender, whose customer it may create) goes with them.
    """
    keys = [c.message.dedupe_key for c in contexts]
    stored = set(Message.objects.filter(dedupe_key__in=keys).order_by().values_list("dedupe_key", flat=True))
    kept, seen = [], set()
    later_ids: set[str] = set()
    later_senders: set[str] = set()
    for ctx in contexts:
        key = ctx.message.dedupe_key
        if key in stored or key in seen:
            rest.append(ctx.raw.pk)  # run_pipeline marks the duplicate
            continue
        if (ctx.message.from_address in later_senders or later_ids.intersection(thread.reference_ids(ctx))
                or not _plain(ctx)):
            rest.append(ctx.raw.pk)
            later_ids.add(ctx.message.message_id)
            later_senders.add(ctx.message.from_address)
            continue
        seen.add(key)
        deduplicate.decide_new(ctx)
        classify.run(ctx)
        if ctx.automated:
            rest.append(ctx.raw.pk)  # classified again by run_pipeline, which files bounces and loops
            later_ids.add(ctx.message.message_id)
            continue
        kept.append(ctx)
    return kept


def _threaded(generation: list[Context], threads: batch_threads.Threads, rest: list[int]) -> list[Context]:
    """The thread step for one generation, with parents found for the whole batch beforehand."""
    kept = []
    for ctx in generation:
        parent_ctx = threads.in_batch.get(id(ctx))
        if parent_ctx is not None and parent_ctx.message.pk is None:
            rest.append(ctx.raw.pk)  # its parent went one by one: so does the reply, after it
            continue
        ctx.parent = parent_ctx.message if parent_ctx is not None else threads.stored.get(id(ctx))
        ctx.mail.in_reply_to, ctx.mail.references = "", []  # looked up already
        thread.run(ctx)
        kept.append(ctx)
    return kept


def _customers(contexts: list[Context], rest: list[int]) -> list[Context]:
    addresses = {c.message.from_address for c in contexts if c.message.from_address}
    found = {e.address: e.customer for e in CustomerEmail.objects.select_related("customer").filter(
        address__in=addresses).order_by()}
    new: dict[str, Customer] = {}
    kept = []
    for ctx in contexts:
        address = ctx.message.from_address
        creates = ctx.account is None or ctx.account.create_customer_if_not_found
        if not address or (address not in found and not creates):
            rest.append(ctx.raw.pk)  # no sender, or not imported: run_pipeline says why
            continue
        if address not in found and address not in new:
            new[address] = Customer(store=ctx.account.store if ctx.account is not None else None)
        kept.append(ctx)
    if new:
        Customer.objects.bulk_create(new.values())
        CustomerEmail.objects.bulk_create(CustomerEmail(customer=c, address=a) for a, c in new.items())
        if RawMessage.objects.filter(status=RawMessage.Status.SKIPPED).exists():
            for address in new:
                import_skipped_from(address)  # bulk inserts send no post_save signal
    created: set[str] = set()
    for ctx in kept:
        address = ctx.message.from_address
        is_new = address in new and address not in created
        created.add(address)
        customer.linked(ctx, found.get(address) or new[address], created=is_new)
    return kept


def _records(contexts: list[Context], rest: list[int]) -> list[Context]:
    pending = []
    kept = []
    for ctx in contexts:
        append_to = ctx.account.append_to if ctx.account is not None else ""
        target = targets.get_target(append_to) if append_to else None
        if not append_to or ctx.record is not None or not ctx.new_conversation:
            route.run(ctx)  # no record to create: a reply joins its parent's (reopening a closed ticket)
        elif target is None or target.create is None:
            rest.append(ctx.raw.pk)
            continue
        elif target.key == "customer" and ctx.customer is not None:
            route.created(ctx, ctx.customer)
        elif target.create in records.BUILDERS:
            pending.append((ctx, records.BUILDERS[target.create](route.conversation(ctx))))
        else:
            route.created(ctx, target.create(route.conversation(ctx)))  # an integrator's record type
        kept.append(ctx)
    by_model: dict[type[Model], list[Model]] = {}
    for _, record in pending:
        by_model.setdefault(type(record), []).append(record)
    for model, rows in by_model.items():
        model._default_manager.bulk_create(rows)
    for ctx, record in pending:
        route.created(ctx, record)
    return kept


def _store(contexts: list[Context]) -> None:
    """The store step and the steps after it, for one generation: inserts and updates in bulk."""
    for ctx in contexts:
        if ctx.customer is not None and ctx.customer.agent_id is not None:
            ctx.message.agent_id = ctx.customer.agent_id  # what the assign step would save one by one
    messages = [store.prepare(ctx) for ctx in contexts]
    Message.objects.bulk_create(messages)
    Attachment.objects.bulk_create([a for ctx in contexts for a in store.attachments(ctx)])
    RawMessage.objects.filter(pk__in=[c.raw.pk for c in contexts]).update(
        status=RawMessage.Status.PROCESSED, status_reason="")
    changed = []
    for ctx in contexts:
        for step in AFTER_STORE:
            step.run(ctx)
        if ctx.decisions_saved != len(ctx.decisions):
            ctx.message.decisions = list(ctx.decisions)
            changed.append(ctx.message)
    if changed:
        Message.objects.bulk_update(changed, ["decisions"])


def _timed(stage: str, function: Callable[..., T], *args: Any) -> T:
    started = time.perf_counter()
    try:
        return function(*args)
    finally:
        STAGE_SECONDS[stage] = STAGE_SECONDS.get(stage, 0.0) + time.perf_counter() - started


def _bulk(chunk: list[int]) -> tuple[int, list[int]]:
    if not connection.features.can_return_rows_from_bulk_insert:
        return 0, chunk  # bulk-created rows would have no ids to link to
    rest: list[int] = []
    done = 0
    with transaction.atomic():
        raws = list(RawMessage.objects.select_for_update(of=("self",)).filter(pk__in=chunk, message__isnull=True)
                    .defer("from_header", "to_header", "flags").order_by("id"))
        claimed = {r.pk for r in raws}
        rest.extend(i for i in chunk if i not in claimed)  # reprocessing, or gone: run_pipeline handles it
        parsed = _timed("parse", _parsed, raws, rest)
        threads = _timed("thread", batch_threads.resolve, _timed("deduplicate+classify", _new_only, parsed, rest))
        for generation in threads.generations:  # parents before their replies
            contexts = _timed("thread", _threaded, generation, threads, rest)
            contexts = _timed("route", _records, _timed("customer", _customers, contexts, rest), rest)
            _timed("store+after", _store, contexts)
            done += len(contexts)
    return done, sorted(rest)
