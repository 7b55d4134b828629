"""Turns a stored RawMessage into a Message: the ordered steps, run in one transaction per message.

The order is this one list (reordering is a one-line diff). Each step is a module in ``steps/`` with
``NAME`` and ``run(ctx)``, records its decisions on the context, and is idempotent, so re-running a
message (``buzon reprocess``) updates the same Message and record instead of adding new ones.

A step ends processing on purpose by raising a StopPipeline subclass (Duplicate, Skip, Unreadable).
Any other exception rolls the message's work back and quarantines it: the Message is kept with
status ``failed`` and the failing step and error recorded; re-running it is safe.
"""

from __future__ import annotations

import logging
import time
from types import ModuleType

from django.db import connection, transaction
from django.utils.translation import gettext_noop

from buzon.inbound import cache
from buzon.inbound.context import Context, Duplicate, Skip, Unreadable
from buzon.inbound.steps import (
    assign,
    autoreply,
    bounced,
    classify,
    customer,
    deduplicate,
    notify,
    parse,
    route,
    store,
    thread,
)
from buzon.messages.models import Direction, Message, MessageStatus
from buzon.sync import deletion
from buzon.sync.models import KEY_ONLY, RawMessage

logger = logging.getLogger(__name__)

STEPS: list[ModuleType] = [
    parse, deduplicate, classify, thread, customer, route, store, bounced, assign, notify, autoreply,
]

#: Seconds spent per step name since the process started (bench/bench_pipeline.py prints them).
STEP_SECONDS: dict[str, float] = {}


def _context(raw: RawMessage) -> Context:
    try:
        message = raw.message  # fetched with the raw row (select_related) when it was processed before
    except Message.DoesNotExist:
        message = Message(direction=Direction.INCOMING)
    return Context(raw=raw, account=cache.account(raw.account_id), message=message,
                   own_addresses=cache.own_addresses())


def _finish_raw(raw: RawMessage, status: str, reason: str = "") -> None:
    raw.status, raw.status_reason = status, reason[:2000]
    RawMessage.objects.filter(pk=raw.pk).update(status=status, status_reason=raw.status_reason)
    if status == RawMessage.Status.PROCESSED:  # imported: the sync may now delete the server's copy
        deletion.mark_imported([raw.pk])


def _run_steps(ctx: Context) -> None:
    for step in STEPS:
        started = time.perf_counter()
        try:
            step.run(ctx)
        except Exception as error:
            error.step = step.NAME  # type: ignore[attr-defined]
            raise
        finally:
            STEP_SECONDS[step.NAME] = STEP_SECONDS.get(step.NAME, 0.0) + time.perf_counter() - started


def _keep_unreadable(ctx: Context, reason: str) -> str:
    message = ctx.message
    message.direction, message.account, message.raw = Direction.INCOMING, ctx.account, ctx.raw
    message.store_id = ctx.store_id
    message.status, message.status_reason = MessageStatus.UNPARSEABLE, reason[:2000]
    message.subject = message.subject or ctx.raw.subject
    message.message_id = message.message_id or ctx.raw.message_id[:998]
    ctx.decide(parse.NAME, "unparseable", gettext_noop("Could not be read: %(why)s."), why=reason)
    message.decisions = ctx.decisions
    message.save()
    _finish_raw(ctx.raw, RawMessage.Status.PROCESSED, reason)
    return "unparseable"


def _quarantine(raw_id: int, error: BaseException) -> str:
    step = getattr(error, "step", "?")
    reason = f"{step}: {type(error).__name__}: {error}"[:2000]
    logger.exception("inbound pipeline failed for raw message %s at step %s", raw_id, step)
    with transaction.atomic():
        raw = RawMessage.objects.select_for_update().get(pk=raw_id)
        message = Message.objects.filter(raw=raw).first() or Message(
            direction=Direction.INCOMING, raw=raw, account_id=raw.account_id, subject=raw.subject,
            message_id=raw.message_id[:998], date=raw.date,
        )  # a new row takes its account's store (Message.save)
        message.status, message.status_reason = MessageStatus.FAILED, reason
        message.decisions = [*message.decisions, {"step": step, "decision": "failed", "error": reason}]
        message.save()
        _finish_raw(raw, RawMessage.Status.FAILED, reason)
    return "failed"


#: Raw messages a pipeline task may take: stored, or skipped ones a new customer brings back.
WAITING = (RawMessage.Status.STORED, RawMessage.Status.SKIPPED)
#: run_pipeline(queued=True) for a message another worker holds or has processed since.
TAKEN = "taken"


def key_only_outcome(status: str) -> str:
    """What running a KEY_ONLY row comes to: it stays as the sync recorded it."""
    return "duplicate" if status == RawMessage.Status.DUPLICATE else "skipped"


def run_pipeline(raw_id: int, *, queued: bool = False) -> str:
    """Process one raw message; returns processed, duplicate, skipped, unparseable or failed.

    ``queued`` (a task's message, not a rerun): only if it still waits and no other worker holds it
    (SKIP LOCKED on PostgreSQL), else TAKEN: that work is done or being done."""
    rows = RawMessage.objects.select_related("message").defer("from_header", "to_header", "flags")
    if queued:
        rows = rows.filter(status__in=WAITING)
    skip = queued and connection.features.has_select_for_update_skip_locked
    try:
        with transaction.atomic():
            raw = rows.select_for_update(of=("self",), skip_locked=skip).get(pk=raw_id)
            if raw.status in KEY_ONLY:  # a server key without the message (its bytes were never kept)
                return key_only_outcome(raw.status)
            ctx = _context(raw)
            try:
                _run_steps(ctx)
            except Unreadable as stop:
                return _keep_unreadable(ctx, stop.reason)
            except Duplicate as stop:
                _finish_raw(raw, RawMessage.Status.PROCESSED, stop.reason)
                return "duplicate"
            except Skip as stop:
                bounced.run(ctx)  # a bounce not imported still tells which addresses failed
                _finish_raw(raw, RawMessage.Status.SKIPPED, stop.reason)
                return "skipped"
            if ctx.decisions_saved != len(ctx.decisions):  # steps after store decided more
                ctx.message.decisions = list(ctx.decisions)
                ctx.message.save(update_fields=["decisions", "updated_at"])
            _finish_raw(raw, RawMessage.Status.PROCESSED)
            return "processed"
    except RawMessage.DoesNotExist:
        if queued:
            return TAKEN
        logger.warning("raw message %s no longer exists", raw_id)
        return "missing"
    except Exception as error:  # quarantine: the message is kept, marked, and can be re-run
        return _quarantine(raw_id, error)
