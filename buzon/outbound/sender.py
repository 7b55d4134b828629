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
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from buzon.core.crypto import SecretUnreadable
from buzon.mailboxes.endpoints import MissingServer
from buzon.messages.outbox import enqueue_delivery
from buzon.outbound import compose, queue
from buzon.outbound.models import OutgoingEmail, QueueState
from buzon.outbound.signing import Signer
from buzon.outbound.smtp import SendOutcome, SMTPPool, shared_pool

log = logging.getLogger("buzon.outbound")
GROUP_WAIT_S = 0.005  # how long a finished send may wait to be committed with its neighbours


@dataclass
class DeliveryStats:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    worker: str = ""
    states: dict[int, str] = field(default_factory=dict)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _prepare(outgoing: OutgoingEmail, signer: Signer, home: str) -> compose.Composed | str:
    """Compose (or, for a retry, reuse the stored bytes). Errors come back as plain words."""
    try:
        composed = compose.compose(outgoing, signer if outgoing.mime is None else None, home)
    except (MissingServer, SecretUnreadable) as exc:
        return _("The account %(address)s cannot send: %(why)s") % {"address": outgoing.message.account, "why": exc}
    if outgoing.mime is not None:  # a retry resends the very bytes of the first attempt
        return compose.Composed(composed.envelope_from, composed.recipients, bytes(outgoing.mime))
    return composed


def _after_sent(outgoing: OutgoingEmail) -> None:
    account = outgoing.message.account
    if account is not None and account.append_to_sent and account.incoming_enabled:
        pk = outgoing.pk
        transaction.on_commit(lambda: import_string(settings.OUTBOUND_APPEND_TASK).enqueue(pk))


def _outcome(outgoing: OutgoingEmail, result: SendOutcome, data: bytes | None) -> queue.Outcome:
    reply = result.reply
    if result.sent and result.refused:
        reply += "\n" + _("Refused recipients: %(list)s") % {"list": "; ".join(
            f"{k}: {v}" for k, v in result.refused.items())}
    mime = data if outgoing.mime is None else None
    return queue.Outcome(outgoing, result.sent, result.permanent, result.code, reply,
                         str(outgoing.message.account or ""), mime)


def _commit(outcomes: list[queue.Outcome], stats: DeliveryStats) -> None:
    states = queue.record_outcomes(outcomes, stats.worker)
    for outcome in outcomes:
        state = states.get(outcome.outgoing.pk)
        if state is None:
            continue
        stats.states[outcome.outgoing.pk] = state
        if state == QueueState.SENT:
            stats.sent += 1
            _after_sent(outcome.outgoing)
        elif state == QueueState.FAILED:
            stats.failed += 1
        elif state == QueueState.PENDING:
            stats.retrying += 1


class _Window:
    """Messages handed to the pool whose outcome is not committed yet; never more than `size`.

    The size is what bounds duplicates after a crash (queue.py), and it keeps every pooled
    connection busy while this thread composes the next messages.
    """

    def __init__(self, size: int, stats: DeliveryStats) -> None:
        self.size = size
        self.stats = stats
        self.inflight: dict[Future[SendOutcome], tuple[OutgoingEmail, bytes]] = {}

    def full(self) -> bool:
        return len(self.inflight) >= self.size

    def settle(self, block: bool) -> None:
        """Commit finished sends as one group. Without `block`, only once half the window is done;
        with it, wait for one, then a few milliseconds more so a fast link yields one commit per
        several messages instead of one per message."""
        if not self.inflight:
            return
        if block:
            done, _pending = wait(self.inflight, return_when=FIRST_COMPLETED)
            if len(done) < max(1, self.size // 2):
                done, _pending = wait(self.inflight, timeout=GROUP_WAIT_S, return_when=ALL_COMPLETED)
        else:
            done = {f for f in self.inflight if f.done()}
            if len(done) < max(1, self.size // 2):
                return
        _commit([self._outcome_of(f) for f in done], self.stats)

    def _outcome_of(self, future: Future[SendOutcome]) -> queue.Outcome:
        outgoing, data = self.inflight.pop(future)
        return _outcome(outgoing, future.result(), data)


def deliver_due(*, worker: str | None = None, batch: int | None = None, limit: int | None = None,
                pool: SMTPPool | None = None) -> DeliveryStats:
    """Send every due message (or `limit` of them). Safe to run in many processes at once."""
    stats = DeliveryStats(worker=worker or worker_name())
    pool = pool or shared_pool()
    window = _Window(pool.per_account, stats)
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
            "message__record_type").prefetch_related("attachments").order_by("-priority", "next_attempt_at", "pk"))
        for outgoing in outgoings:
            item = _prepare(outgoing, signer, home)  # composing the next one while the window sends
            if isinstance(item, str):
                _commit([queue.Outcome(outgoing, sent=False, reply=item)], stats)
                continue
            window.settle(block=False)
            while window.full():
                window.settle(block=True)
            account = outgoing.message.account
            assert account is not None
            future = pool.submit(account, item.envelope_from, item.recipients, item.data)
            window.inflight[future] = (outgoing, item.data)
        while window.inflight:
            window.settle(block=True)
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
