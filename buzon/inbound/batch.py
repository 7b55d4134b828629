"""Many raw messages at once: the same steps and decisions as run_pipeline, with reads and writes in bulk.

Per message, the pipeline costs about ten ORM queries; the ORM's own work per query (not SQLite's)
is most of the time. For a sync chunk this runner makes every message's decisions with the same step
code, but looks up what the steps need once per batch (duplicates, our sent mail, parents and their
records, records named by tokens and plus addresses, customers: see batch_lookups and batch_threads)
and writes in bulk (customers, records, messages, attachments, raw status). Bounces, auto-replies,
copies of our own sent mail, duplicates and skipped senders are decided here too. The steps after
``store`` (assign, notify, auto-reply) run per message, in the order the messages came, as one by one.

Messages are stored in generations (parents before their replies, a sender's first message before
the rest), so a reply can name its parent's id. What only run_pipeline decides right goes through it
one at a time after the batch: a reprocessed or unreadable message, one naming a record that does not
exist yet, and every later message that depends on one of those (answers it, or comes from the same
sender). If anything in the bulk part raises, its transaction rolls back and the whole chunk goes
through ``run_pipeline``, so a failure still marks one message, never the batch.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import IntegrityError, connection, transaction
from django.db.models import Model, Q

from buzon.crm import records
from buzon.crm.models import Customer, CustomerEmail
from buzon.inbound import batch_lookups, batch_threads, cache
from buzon.inbound.context import Context, Duplicate, Skip, StopPipeline
from buzon.inbound.mail.parse import ParsedMail
from buzon.inbound.pipeline import STEPS, TAKEN, WAITING, run_pipeline
from buzon.inbound.reprocess import import_skipped_from
from buzon.inbound.steps import assign, bounced, classify, customer, deduplicate, parse, route, store, thread
from buzon.messages import placement, targets
from buzon.messages.conversations import Conversation
from buzon.messages.models import Direction, Message
from buzon.sync import deletion
from buzon.sync.fastinsert import insert_rows_returning
from buzon.sync.models import KEY_ONLY, RawContent, RawMessage

logger = logging.getLogger(__name__)

CHUNK = 200
#: A task carrying fewer messages than this is filled up to CHUNK with other waiting mail (run_queued).
FILL_BELOW = 20
#: Seconds spent per stage of the bulk path since the process started (bench/bench_pipeline.py prints them).
STAGE_SECONDS: dict[str, float] = {}
T = TypeVar("T")
AFTER_STORE = STEPS[STEPS.index(store) + 1:]


def run_batch(raw_ids: Iterable[int]) -> Counter[str]:
    """Process the raw messages; returns how many ended processed, duplicate, skipped, ..."""
    return _run(list(dict.fromkeys(raw_ids)), room=0)


def run_queued(raw_ids: Iterable[int]) -> Counter[str]:
    """A pipeline task's messages, with the other stored messages waiting for the pipeline.

    Under load most tasks carry one IDLE arrival, and a batch's fixed cost (tens of queries) is then
    most of the work. So a task of fewer than FILL_BELOW messages fills its first chunk up to CHUNK
    with the oldest stored messages no one is processing (SKIP LOCKED on PostgreSQL; SQLite's
    IMMEDIATE transactions take one writer at a time), and skips what another worker is processing or
    has processed since it was queued: that work is done or being done, never twice. A bigger task
    (a sync chunk of a first download) is not filled: its fixed cost is shared already, and the
    waiting mail is most likely other tasks' own, which other worker processes parse meanwhile.
    Only messages still waiting (stored, or skipped ones a new customer brings back) are taken;
    ``run_batch`` (``buzon reprocess``) reruns anything."""
    return _run(_waiting(list(dict.fromkeys(raw_ids))), room=CHUNK)


def _waiting(ids: list[int]) -> list[int]:
    if not ids:
        return []
    return list(RawMessage.objects.filter(pk__in=ids, status__in=WAITING).order_by("id").values_list("id", flat=True))


def _run(ids: list[int], room: int) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    first = True
    while ids or (first and room):
        chunk, ids = ids[:CHUNK], ids[CHUNK:]
        claimed: list[int] = []
        try:
            fill = max(0, room - len(chunk)) if first and len(chunk) < FILL_BELOW else 0
            done, rest = _bulk(chunk, room=fill, queued=room > 0, claimed=claimed)
        except Exception:  # the chunk's transaction rolled back: every message goes the careful way
            logger.exception("bulk processing failed; processing %s messages one by one", len(claimed or chunk))
            done, rest = Counter(), (claimed or chunk)
        first = False
        outcomes.update(done)
        for raw_id in rest:  # a task's: only what no other worker took meanwhile (our locks are gone)
            outcome = run_pipeline(raw_id, queued=room > 0)
            if outcome != TAKEN:
                outcomes[outcome] += 1
    return outcomes


@dataclass
class _Batch:
    """Where each message of a chunk ended, and which ones later messages must not overtake."""

    rest: list[int] = field(default_factory=list)  # raw ids for run_pipeline, after the batch
    outcomes: Counter[str] = field(default_factory=Counter)
    finished: list[RawMessage] = field(default_factory=list)  # duplicates and skipped: no Message
    copies: dict[int, Context] = field(default_factory=dict)  # id(duplicate) -> the copy before it
    skipped: list[Context] = field(default_factory=list)
    # Message-IDs and senders of deferred messages -> the first such raw id
    deferred_ids: dict[str, int] = field(default_factory=dict)
    deferred_senders: dict[str, int] = field(default_factory=dict)

    def defer(self, ctx: Context) -> None:
        """One by one after the batch; so, then, every later message that answers it or comes from
        its sender (which the deferred message may make a customer)."""
        self.rest.append(ctx.raw.pk)
        if ctx.message.message_id:
            self.deferred_ids.setdefault(ctx.message.message_id, ctx.raw.pk)
        self.deferred_senders.setdefault(ctx.message.from_address, ctx.raw.pk)

    def waits(self, ctx: Context) -> bool:
        """Whether a message before this one went one by one and this one depends on it."""
        before = ctx.raw.pk
        return (self.deferred_senders.get(ctx.message.from_address, before) < before
                or any(self.deferred_ids.get(i, before) < before for i in thread.reference_ids(ctx)))

    def finish(self, ctx: Context, status: str, stop: StopPipeline, outcome: str) -> None:
        """As run_pipeline ends a message a step stopped: the raw row's status and reason, no Message."""
        ctx.raw.status, ctx.raw.status_reason = status, stop.reason[:2000]
        self.finished.append(ctx.raw)
        self.outcomes[outcome] += 1


def _read_ahead(chunk: list[int]) -> dict[int, tuple[str, ParsedMail]]:
    """The chunk's waiting messages parsed before the batch's transaction: parsing is most of a
    batch's CPU, and on SQLite the transaction holds the database's one write lock (BEGIN IMMEDIATE)
    from its start, so parsed inside it, the pipeline in a second worker process would wait for this
    one's parsing instead of parsing its own chunk. Keyed by id, with the bytes' hash to match them
    to the row claimed; one that fails is parsed again inside, where its reason is kept."""
    if not chunk:
        return {}
    rows = {raw.pk: raw for raw in RawMessage.objects.filter(
        pk__in=chunk, message__isnull=True, status__in=WAITING).only("pk", "truncated", "sha256")}
    ahead: dict[int, tuple[str, ParsedMail]] = {}
    for raw_id, data in RawContent.stream(list(rows)):
        raw = rows[raw_id]
        raw.hold_data(data)
        try:
            ahead[raw_id] = (raw.sha256, parse.read(raw))
        except (StopPipeline, ValueError, LookupError, RecursionError):
            continue
        finally:
            raw.hold_data(None)
    return ahead


def _parsed(raws: list[RawMessage], batch: _Batch, ahead: dict[int, tuple[str, ParsedMail]]) -> list[Context]:
    contexts = []
    for raw in raws:
        ctx = Context(raw=raw, account=cache.account(raw.account_id), message=Message(direction=Direction.INCOMING),
                      own_addresses=cache.own_addresses())
        sha256, mail = ahead.get(raw.pk, ("", None))
        try:
            parse.run(ctx, mail if sha256 == raw.sha256 else None)
        except (StopPipeline, ValueError, LookupError, RecursionError):
            batch.rest.append(raw.pk)  # run_pipeline keeps it as unparseable, with the reason
            continue
        ctx.message.dedupe_key = deduplicate.dedupe_key(ctx)
        contexts.append(ctx)
    return contexts


def _names_future_record(ctx: Context) -> bool:
    """A token or plus address naming a record not found and newer than any: if a message before it
    in this batch made that record, one by one would find it, so such a message goes that way."""
    known = ctx.known
    return known is not None and any(
        known.records.get((n.target.model, n.record_id)) is None and n.record_id > known.highest_id[n.target.model]
        for n in thread.named_records(ctx))


def _new_only(contexts: list[Context], batch: _Batch) -> list[Context]:
    """The deduplicate and classify steps: copies of our sent mail and duplicates end here. A key is
    a duplicate only within the receiving account's store, as one by one."""
    stored = _stored_keys(contexts)
    last: dict[tuple[int | None, str | None], Context] = {}
    kept = []
    for ctx in contexts:
        try:
            deduplicate.own_sent_copy(ctx)
        except Duplicate as stop:
            batch.finish(ctx, RawMessage.Status.PROCESSED, stop, "duplicate")
            continue
        key = (ctx.store_id, ctx.message.dedupe_key)
        if key in stored:
            batch.finish(ctx, RawMessage.Status.PROCESSED, deduplicate.already_stored(stored[key]), "duplicate")
            continue
        if key in last:
            batch.copies[id(ctx)] = last[key]  # decided once the copy before it is (_threaded)
            last[key] = ctx
            kept.append(ctx)
            continue
        last[key] = ctx
        if batch.waits(ctx) or _names_future_record(ctx):
            batch.defer(ctx)
            continue
        kept.append(ctx)
    if kept:
        batch_lookups.index_sent_message_ids(kept[0].known)  # type: ignore[arg-type]
    for ctx in kept:
        if id(ctx) not in batch.copies:
            _new(ctx)
    return kept


def _stored_keys(contexts: list[Context]) -> dict[tuple[int | None, str | None], int]:
    """(store, dedupe key) -> a stored message with it, for the batch's keys: one query."""
    by_store: dict[int | None, set[str]] = {}
    for ctx in contexts:
        by_store.setdefault(ctx.store_id, set()).add(ctx.message.dedupe_key or "")
    condition = Q(pk__in=[])
    for store_id, keys in by_store.items():
        condition |= Q(dedupe_key__in=keys, **records.store_filter(store_id))
    rows = Message.objects.filter(condition).order_by().values_list("store_id", "dedupe_key", "pk")
    return {(store_id, key): pk for store_id, key, pk in rows}


def _new(ctx: Context) -> None:
    deduplicate.decide_new(ctx)
    classify.run(ctx)


def _copy_settled(ctx: Context, batch: _Batch) -> bool:
    """For a later copy of mail that came earlier in the batch: a duplicate of the earlier one if that
    was stored, one by one if that went one by one; else (not imported) it is new. True when settled."""
    earlier = batch.copies.get(id(ctx))
    while earlier is not None:
        if earlier.message.pk is not None:
            batch.finish(ctx, RawMessage.Status.PROCESSED, deduplicate.already_stored(earlier.message.pk),
                         "duplicate")
            return True
        if earlier.raw.pk in batch.rest:
            batch.defer(ctx)
            return True
        earlier = batch.copies.get(id(earlier))
    if id(ctx) in batch.copies:
        _new(ctx)  # the earlier copies were skipped: as one by one, this one is decided afresh
    return False


def _threaded(generation: list[Context], threads: batch_threads.Threads, batch: _Batch) -> list[Context]:
    """The thread step for one generation, with parents found for the whole batch beforehand."""
    kept = []
    for ctx in generation:
        if _copy_settled(ctx, batch):
            continue
        parent_ctx = threads.in_batch.get(id(ctx))
        if (parent_ctx is not None and parent_ctx.message.pk is None) or batch.waits(ctx):
            batch.defer(ctx)  # its parent (or its sender's first message) went one by one: so does it
            continue
        if parent_ctx is not None:
            ctx.parent = parent_ctx.message
        elif id(ctx) in threads.stored:
            ctx.parent = threads.stored[id(ctx)]
        # else: no parent by headers; a bounce keeps the sent message classify found
        ctx.mail.in_reply_to, ctx.mail.references = "", []  # looked up already
        thread.run(ctx)
        kept.append(ctx)
    return kept


def _customers(contexts: list[Context], batch: _Batch) -> list[Context]:
    """The customer step for one generation: one query for the senders, new customers in bulk.
    Customers are per store: a sender is looked up (and created) in the receiving account's store."""
    found = _customers_of_senders(contexts)
    new: dict[tuple[int | None, str], Customer] = {}
    waiting: list[Context] = []  # linked once their new customer has an id
    kept = []
    for ctx in contexts:
        address = ctx.message.from_address
        key = (ctx.store_id, address)
        if key in new:
            waiting.append(ctx)
        else:
            try:
                creates = customer.decide(ctx, found.get(key) if address else None)
            except Skip as stop:
                batch.finish(ctx, RawMessage.Status.SKIPPED, stop, "skipped")
                batch.skipped.append(ctx)
                continue
            if creates:
                new[key] = Customer(store=ctx.account.store if ctx.account is not None else None)
                waiting.append(ctx)
        kept.append(ctx)
    won: dict[tuple[int | None, str], Customer] = {}  # another worker's new customers, committed meanwhile
    if new:
        won = _create_customers(new)
        if RawMessage.objects.filter(status=RawMessage.Status.SKIPPED).exists():
            for store_id, address in new:
                import_skipped_from(address, store_id)  # bulk inserts send no post_save signal
    linked: set[tuple[int | None, str]] = set()
    for ctx in waiting:
        key = (ctx.store_id, ctx.message.from_address)
        if key in won:
            customer.decide(ctx, won[key])  # as one by one when it loses the race: linked to the winner
        elif key in linked:
            customer.decide(ctx, new[key])  # found now: linked, as one by one
        else:
            customer.linked(ctx, new[key], created=True)
            linked.add(key)
    return kept


def _create_customers(new: dict[tuple[int | None, str], Customer]) -> dict[tuple[int | None, str], Customer]:
    """Create the customers of `new` ((store, address) -> unsaved customer), in bulk.

    Two workers whose batches bring the same new sender at once race on CustomerEmail's unique
    (store, address), as `records.create_customer_for` does one by one: its insert waits for the
    other transaction and then does nothing (a conflict is ignored, not raised, which would roll
    back every message of the chunk). The keys that lost are taken out of `new`, their customer
    rows deleted, and returned with the winners' customers, read after the wait."""
    Customer.objects.bulk_create(new.values())
    failed = customer.undeliverable_by_store(list(new))  # each in its own store, as one by one
    # In one order for every worker: two batches waiting on each other's new addresses would deadlock.
    CustomerEmail.objects.bulk_create(
        [CustomerEmail(customer=c, store_id=c.store_id, address=a, undeliverable=(s, a) in failed,
                       undeliverable_reason=failed.get((s, a), ""))
         for (s, a), c in sorted(new.items(), key=lambda item: (item[0][0] or 0, item[0][1]))],
        ignore_conflicts=True)
    mine = set(CustomerEmail.objects.filter(customer__in=list(new.values())).values_list("customer_id", flat=True))
    lost = [key for key, c in new.items() if c.pk not in mine]
    if not lost:
        return {}
    Customer.objects.filter(pk__in=[new.pop(key).pk for key in lost]).delete()
    winners = _customers_by_key(lost)
    if len(winners) != len(lost):  # gone again already: the chunk goes the careful way, one by one
        raise IntegrityError(f"customers of {sorted(set(lost) - set(winners))} neither created nor found")
    return winners


def _customers_of_senders(contexts: list[Context]) -> dict[tuple[int | None, str], Customer]:
    """(store, address) -> that store's customer with the address, for the senders: one query."""
    return _customers_by_key([(ctx.store_id, ctx.message.from_address) for ctx in contexts
                              if ctx.message.from_address])


def _customers_by_key(keys: list[tuple[int | None, str]]) -> dict[tuple[int | None, str], Customer]:
    """(store, address) -> that store's customer with the address: one query."""
    by_store: dict[int | None, set[str]] = {}
    for store_id, address in keys:
        by_store.setdefault(store_id, set()).add(address)
    condition = Q(pk__in=[])
    for store_id, addresses in by_store.items():
        condition |= Q(address__in=addresses, **records.store_filter(store_id))
    rows = CustomerEmail.objects.select_related("customer").filter(condition).order_by()
    return {(e.store_id, e.address): e.customer for e in rows}


def _records(contexts: list[Context]) -> list[Context]:
    """The route step for one generation: records of new conversations inserted in bulk."""
    pending = []
    for ctx in contexts:
        append_to = ctx.account.append_to if ctx.account is not None else ""
        target = targets.get_target(append_to) if append_to else None
        if (target is None or target.create is None or ctx.record is not None or not ctx.new_conversation
                or ctx.automated):
            route.run(ctx)  # no record to create: a reply joins its parent's (reopening a closed ticket)
        elif target.key == "customer" and ctx.customer is not None:
            route.created(ctx, ctx.customer)
        elif target.create in records.BUILDERS:
            pending.append((ctx, records.BUILDERS[target.create](route.conversation(ctx))))
        else:
            route.created(ctx, target.create(route.conversation(ctx)))  # an integrator's record type
    by_model: dict[type[Model], list[Model]] = {}
    for _, record in pending:
        by_model.setdefault(type(record), []).append(record)
    for model, rows in by_model.items():
        model._default_manager.bulk_create(rows)
    for ctx, record in pending:
        route.created(ctx, record)
    return contexts


def _store(contexts: list[Context]) -> list[Conversation]:
    """The store step for one generation: inserts and updates in bulk; returns the conversations it
    started (their counts are written once the batch is stored)."""
    for ctx in contexts:
        if ctx.customer is not None and ctx.customer.agent_id is not None and assign.same_store(ctx):
            ctx.message.agent_id = ctx.customer.agent_id  # what the assign step would save one by one
    messages = [store.prepare(ctx) for ctx in contexts]
    started = placement.place_many([(ctx.message, ctx.parent) for ctx in contexts])
    # One statement each (bulk_create compiles SQL per row), and one call each of the search index's
    # statement-level triggers (executemany would insert, and index, attachment by attachment):
    # counted in their conversations once the batch is stored (_bulk).
    insert_rows_returning(messages)
    insert_rows_returning([a for ctx in contexts for a in store.attachments(ctx)])
    RawMessage.objects.filter(pk__in=[c.raw.pk for c in contexts]).update(
        status=RawMessage.Status.PROCESSED, status_reason="")
    return started


def _after_store(contexts: list[Context], skipped: list[Context]) -> None:
    """bounced, assign, notify, auto-reply: per message, in arrival order (which addresses a bounce
    finds as customers, who gets which agent, which message gets the day's auto-reply), as one by
    one. A skipped bounce still marks its recipients, as in run_pipeline."""
    changed = []
    for ctx in sorted([*contexts, *skipped], key=lambda c: c.raw.pk):
        if ctx.message.pk is None:
            bounced.run(ctx)
            continue
        for step in AFTER_STORE:
            step.run(ctx)
        if ctx.decisions_saved != len(ctx.decisions):
            ctx.message.decisions = list(ctx.decisions)
            changed.append(ctx.message)
    if changed:
        Message.objects.bulk_update(changed, ["decisions"])


def _finish(batch: _Batch) -> None:
    """Every raw row that ends without a Message: duplicates, skipped."""
    if batch.finished:
        RawMessage.objects.bulk_update(batch.finished, ["status", "status_reason"])


def _timed(stage: str, function: Callable[..., T], *args: Any) -> T:
    started = time.perf_counter()
    try:
        return function(*args)
    finally:
        STAGE_SECONDS[stage] = STAGE_SECONDS.get(stage, 0.0) + time.perf_counter() - started


def _claim(chunk: list[int], room: int, queued: bool) -> tuple[list[RawMessage], list[int]]:
    """The chunk's raw rows, locked, and the ids run_pipeline must take instead; for a task
    (``queued``), also up to ``room`` more stored messages, and nothing another worker holds."""
    # Not the bytes (RawContent): read and parsed before the transaction (_read_ahead); a message
    # whose parse is missing loads them by itself (parse.read).
    rows = RawMessage.objects.filter(message__isnull=True).defer("from_header", "to_header", "flags").order_by("id")
    skip = connection.features.has_select_for_update_skip_locked
    locked = rows.select_for_update(of=("self",), skip_locked=queued and skip)
    if not queued:  # a key-only row (a duplicate) goes to run_pipeline, which leaves it as it is
        raws = list(locked.filter(pk__in=chunk).exclude(status__in=KEY_ONLY))
        claimed = {r.pk for r in raws}
        return raws, [i for i in chunk if i not in claimed]  # reprocessing, or gone: run_pipeline handles it
    raws = list(locked.filter(pk__in=chunk, status__in=WAITING)) if chunk else []
    if room:
        raws += locked.filter(status=RawMessage.Status.STORED).exclude(pk__in=chunk)[:room]
    return sorted(raws, key=lambda r: r.pk), []


def _bulk(chunk: list[int], *, room: int = 0, queued: bool = False,
          claimed: list[int] | None = None) -> tuple[Counter[str], list[int]]:
    batch = _Batch()
    if not connection.features.can_return_rows_from_bulk_insert:
        return batch.outcomes, chunk  # bulk-created rows would have no ids to link to
    ahead = _timed("parse", _read_ahead, chunk)
    with transaction.atomic():
        raws, rest = _claim(chunk, room, queued)
        if claimed is not None:
            claimed.extend(r.pk for r in raws)
        batch.rest.extend(rest)
        parsed = _timed("parse", _parsed, raws, batch, ahead)
        known = _timed("lookups", batch_lookups.prefetch, parsed)
        threads = _timed("thread", batch_threads.resolve, _timed("deduplicate+classify", _new_only, parsed, batch),
                         known, batch.copies)
        stored: list[Context] = []
        started: list[Conversation] = []
        for generation in threads.generations:  # parents before their replies
            contexts = _timed("thread", _threaded, generation, threads, batch)
            contexts = _timed("route", _records, _timed("customer", _customers, contexts, batch))
            started += _timed("store", _store, contexts)
            stored += contexts
        # bulk inserts skip Message.save: one UPDATE per conversation, with the batch's mail in arrival order
        _timed("store", placement.record_activity, [c.message for c in stored], started)
        _timed("after store", _after_store, stored, batch.skipped)
        _timed("finish", _finish, batch)
        # imported (stored, or a duplicate of mail held): the sync may now delete the server's copy
        deletion.mark_imported([c.raw.pk for c in stored] + [
            raw.pk for raw in batch.finished if raw.status == RawMessage.Status.PROCESSED])
        if stored:
            batch.outcomes["processed"] += len(stored)
    return batch.outcomes, sorted(batch.rest)
