"""The delivery loop: claim due messages, compose and sign them, send through pooled connections.

Each claimed batch is composed first (its bytes are stored, so a retry resends the very same
message), then handed to the pool; each message's outcome is committed as soon as its server
answers. See queue.py for why a crash loses nothing and duplicates at most the in-flight messages.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from concurrent.futures import Future, as_completed
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from buzon.core.crypto import SecretUnreadable
from buzon.mailboxes.endpoints import MissingServer
from buzon.messages.models import Message
from buzon.messages.outbox import enqueue_delivery
from buzon.outbound import compose, queue
from buzon.outbound.models import OutgoingEmail, QueueState
from buzon.outbound.signing import Signer
from buzon.outbound.smtp import SendOutcome, SMTPPool, shared_pool

log = logging.getLogger("buzon.outbound")


@dataclass
class DeliveryStats:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    worker: str = ""
    states: dict[int, str] = field(default_factory=dict)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _prepare(batch: list[OutgoingEmail], signer: Signer, home: str) -> dict[int, compose.Composed | str]:
    """Compose what is not composed yet; store the bytes before sending. Errors are plain words."""
    prepared: dict[int, compose.Composed | str] = {}
    fresh: list[OutgoingEmail] = []
    for outgoing in batch:
        try:
            composed = compose.compose(outgoing, signer, home)
        except (MissingServer, SecretUnreadable) as exc:
            prepared[outgoing.pk] = _("The account %(address)s cannot send: %(why)s") % {
                "address": outgoing.message.account, "why": exc}
            continue
        if outgoing.mime is not None:  # a retry: send the stored bytes, not a re-composed message
            composed = compose.Composed(composed.envelope_from, composed.recipients, bytes(outgoing.mime))
        else:
            outgoing.mime = composed.data
            fresh.append(outgoing)
        prepared[outgoing.pk] = composed
    if fresh:
        with transaction.atomic():
            OutgoingEmail.objects.bulk_update(fresh, ["mime"])
            Message.objects.bulk_update([o.message for o in fresh], ["from_address", "from_name", "reply_to"])
    return prepared


def _after_sent(outgoing: OutgoingEmail) -> None:
    account = outgoing.message.account
    if account is not None and account.append_to_sent and account.incoming_enabled:
        pk = outgoing.pk
        transaction.on_commit(lambda: import_string(settings.OUTBOUND_APPEND_TASK).enqueue(pk))


def _record(outgoing: OutgoingEmail, outcome: SendOutcome, server: str, worker: str, stats: DeliveryStats) -> None:
    reply = outcome.reply
    if outcome.sent and outcome.refused:
        reply += "\n" + _("Refused recipients: %(list)s") % {"list": "; ".join(
            f"{k}: {v}" for k, v in outcome.refused.items())}
    state = queue.record_outcome(outgoing.pk, sent=outcome.sent, permanent=outcome.permanent, code=outcome.code,
                                 reply=reply, server=server, worker=worker)
    stats.states[outgoing.pk] = state
    if state == QueueState.SENT:
        stats.sent += 1
        _after_sent(outgoing)
    elif state == QueueState.FAILED:
        stats.failed += 1
    elif state == QueueState.PENDING:
        stats.retrying += 1


def deliver_due(*, worker: str | None = None, batch: int | None = None, limit: int | None = None,
                pool: SMTPPool | None = None) -> DeliveryStats:
    """Send every due message (or `limit` of them). Safe to run in many processes at once."""
    stats = DeliveryStats(worker=worker or worker_name())
    pool = pool or shared_pool()
    signer = Signer()
    home = compose._home_address()
    done = 0
    while limit is None or done < limit:
        size = min(batch or settings.OUTBOUND_BATCH, (limit - done) if limit is not None else 10**9)
        ids = queue.claim_due(stats.worker, size)
        if not ids:
            break
        done += len(ids)
        outgoings = list(OutgoingEmail.objects.filter(pk__in=ids).select_related(
            "message", "message__account", "message__account__domain", "message__created_by",
            "message__record_type").prefetch_related("attachments"))
        prepared = _prepare(outgoings, signer, home)
        futures: dict[Future[SendOutcome], OutgoingEmail] = {}
        for outgoing in outgoings:
            item = prepared[outgoing.pk]
            if isinstance(item, str):
                _record(outgoing, SendOutcome(sent=False, reply=item), "", stats.worker, stats)
                continue
            account = outgoing.message.account
            assert account is not None
            futures[pool.submit(account, item.envelope_from, item.recipients, item.data)] = outgoing
        for future in as_completed(futures):
            outgoing = futures[future]
            _record(outgoing, future.result(), str(outgoing.message.account), stats.worker, stats)
    schedule_next()
    return stats


_scheduled: set[object] = set()


def schedule_next() -> None:
    """Wake a worker when the earliest retry (or a scheduled message) falls due (once per time per process).

    A backend that cannot defer (immediate, in tests) is not asked: it would run the task at once.
    """
    if not import_string(settings.OUTBOUND_TASK).get_backend().supports_defer:
        return
    earliest = OutgoingEmail.objects.filter(state=QueueState.PENDING).aggregate(at=Min("next_attempt_at"))["at"]
    if earliest is None or earliest <= timezone.now() or earliest in _scheduled:
        return
    _scheduled.add(earliest)
    pending = OutgoingEmail.objects.filter(state=QueueState.PENDING, next_attempt_at=earliest).first()
    if pending is not None:
        transaction.on_commit(lambda: enqueue_delivery(pending.pk, earliest))
