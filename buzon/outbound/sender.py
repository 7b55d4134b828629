"""The delivery loop: claim due messages, compose and sign them, send through pooled connections.

This thread claims a batch, composes each message (hashing it for its DKIM signature) and hands it
to the pool, keeping up to two messages per connection waiting so no connection idles while the
next one is composed; the signature's RSA step runs in the connection's thread, where OpenSSL does
it without the GIL, beside this thread's composing (it was a third of this thread's time). It
is also the only thread that writes to the database: each connection *asks* it (a `_Mark`) to
commit its next message as `sending` before starting the SMTP transaction, and reports the
outcome when the server has answered (a `_Done`). The requests are committed together, in the
order they were made, one transaction for whatever arrived meanwhile, so a connection's previous
outcome is always committed no later than its next mark. See queue.py for how that bounds
duplicates after a crash to the one message in flight per connection.
"""

from __future__ import annotations

import email.errors
import logging
import os
import queue as queues
import socket
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Min, Prefetch
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from buzon.core import workerpool
from buzon.core.crypto import SecretUnreadable
from buzon.core.queues import OUTBOUND
from buzon.mailboxes.endpoints import MissingServer
from buzon.mailboxes.models import EmailAccount
from buzon.messages.outbox import enqueue_delivery
from buzon.outbound import compose, queue
from buzon.outbound.addresses import AddressError
from buzon.outbound.models import OutgoingEmail, QueueState
from buzon.outbound.signing import Signer
from buzon.outbound.smtp import Gate, SendOutcome, SMTPPool, shared_pool

log = logging.getLogger("buzon.outbound")
# A request may wait this long for others to share its transaction: a commit per message would cost
# more CPU than composing it, and a connection waiting a few milliseconds for its mark loses little.
GROUP_S = 0.010
# A lingering task claims again this long after a claim that found less than a batch: mail sent a
# message a request is taken several at a time (reading a claim's messages, accounts and records
# cost more than composing one), for at most this much more time before it leaves.
POLL_S = 0.200


@dataclass
class DeliveryStats:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    worker: str = ""
    states: dict[int, str] = field(default_factory=dict)
    commits: int = 0  # database transactions for the marks and outcomes (fewer than messages, in groups)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class _Unsendable:
    """Composing failed: the reason in plain words; permanent when no retry can change it."""

    reply: str
    permanent: bool = False


def _prepare(outgoing: OutgoingEmail, signer: Signer, home: str) -> compose.Composed | _Unsendable:
    """Compose (or, for a retry, reuse the stored bytes). Errors come back as plain words."""
    try:
        composed = compose.compose(outgoing, signer if outgoing.mime is None else None, home)
    except (MissingServer, SecretUnreadable) as exc:  # the account's settings can be corrected: retried
        return _Unsendable(_("The account %(address)s cannot send: %(why)s")
                           % {"address": outgoing.message.account, "why": exc})
    except AddressError as exc:  # an address queued before it was checked (or the account's own): final
        return _Unsendable(_("The message was not sent: %(why)s") % {"why": exc}, permanent=True)
    except DatabaseError:
        raise  # not this message's fault: the claim runs out and the message is tried again
    except (ValueError, TypeError, LookupError, UnicodeError, email.errors.MessageError) as exc:
        # Something queued that can never be composed (a header with a line break queued before such
        # input was refused, say): trying again gives the same result, so it fails now, visibly.
        log.warning("message %s cannot be composed", outgoing.pk, exc_info=True)
        return _Unsendable(_("The message could not be put together for sending, so it was not sent: %(why)s")
                           % {"why": exc}, permanent=True)
    except Exception as exc:  # anything else counts as an attempt: retried, and failed once they run out
        log.exception("composing message %s failed", outgoing.pk)
        return _Unsendable(_("The message could not be put together for sending: %(why)s") % {"why": exc})
    if outgoing.mime is not None:  # a retry resends the very bytes of the first attempt
        return compose.Composed(composed.envelope_from, composed.recipients, bytes(outgoing.mime),
                                composed.utf8_addresses)
    return composed


def _after_sent(outgoing: OutgoingEmail) -> None:
    account = outgoing.message.account
    if account is not None and account.append_to_sent and account.incoming_enabled \
            and outgoing.kind not in compose.INTERNAL_KINDS:  # staff mail is not filed with customers'
        pk = outgoing.pk
        transaction.on_commit(lambda: import_string(settings.OUTBOUND_APPEND_TASK).enqueue(pk))


def _outcome(outgoing: OutgoingEmail, result: SendOutcome) -> queue.Outcome:
    reply = result.reply
    if result.sent and result.refused:
        reply += "\n" + _("Refused recipients: %(list)s") % {"list": "; ".join(
            f"{k}: {v}" for k, v in result.refused.items())}
    account = outgoing.message.account  # the server the attempt went to, as the delivery log shows it
    return queue.Outcome(outgoing, result.sent, result.permanent, result.code, reply,
                         f"{account.smtp_host}:{account.smtp_port}" if account is not None else "")


@dataclass(eq=False)
class _Mark:
    """A connection asks: may this message be sent? (Committed as `sending` first.)"""

    outgoing: OutgoingEmail
    data: bytes
    answered: threading.Event = field(default_factory=threading.Event)
    allowed: bool = False

    def answer(self, allowed: bool) -> None:
        self.allowed = allowed
        self.answered.set()


@dataclass(eq=False)
class _Done:
    """An attempt ended: the pool's future, or an outcome known without sending (compose failed)."""

    outgoing: OutgoingEmail
    future: Future[SendOutcome] | None = None
    outcome: queue.Outcome | None = None


class _Desk:
    """Where the connections' requests wait for this thread to commit them."""

    def __init__(self, stats: DeliveryStats, size: int) -> None:
        self.stats = stats
        self.size = size  # messages handed to the pool and not yet finished, at most
        self.inflight = 0
        self.requests: queues.SimpleQueue[_Mark | _Done] = queues.SimpleQueue()
        self.group = max(1, size // 2)  # this many waiting requests are committed without waiting for more
        self.closed = False

    def full(self) -> bool:
        return self.inflight >= self.size

    def _gate(self, outgoing: OutgoingEmail) -> Gate:
        def may_send(data: bytes) -> bool:
            mark = _Mark(outgoing, data)
            self.requests.put(mark)
            if self.closed:  # the loop has stopped; nobody will answer
                return False
            # Not answered in time (the database is stuck): do not send; the claim is handed back.
            return mark.answered.wait(settings.OUTBOUND_SMTP_TIMEOUT_S) and mark.allowed
        return may_send

    def send(self, pool: SMTPPool, outgoing: OutgoingEmail, item: compose.Composed) -> None:
        account = outgoing.message.account
        assert account is not None
        # Signed by the connection's thread (Composed.content): this one goes on to the next message.
        future = pool.submit(account, item.envelope_from, item.recipients, item.content,
                             gate=self._gate(outgoing), utf8_addresses=item.utf8_addresses)
        self.inflight += 1
        future.add_done_callback(lambda f: self.requests.put(_Done(outgoing, future=f)))

    def failed(self, outgoing: OutgoingEmail, item: _Unsendable) -> None:
        self.inflight += 1
        self.requests.put(_Done(outgoing, outcome=queue.Outcome(outgoing, sent=False, permanent=item.permanent,
                                                                reply=item.reply)))

    def serve(self, block: bool, timeout: float = 1.0) -> None:
        """Commit the requests waiting, as one group. Without `block`, only once `group` of them wait
        (this thread is composing: the window filling up makes it block soon enough); with it, wait
        for one, then up to GROUP_S for the group to fill, while more can come: each message in
        flight asks once at a time (its Done cannot come while its Mark waits here), so with one
        message (a task per queued message, under steady load) nothing is waited for."""
        batch: list[_Mark | _Done] = []
        if not block and self.requests.qsize() < self.group:
            return
        try:
            if block:
                batch.append(self.requests.get(timeout=timeout))
                deadline = time.monotonic() + GROUP_S
                while (len(batch) < min(self.group, self.inflight)
                       and (left := deadline - time.monotonic()) > 0):
                    batch.append(self.requests.get(timeout=left))
            while True:
                batch.append(self.requests.get_nowait())
        except queues.Empty:
            pass
        if not batch:
            return
        self.stats.commits += 1
        marks = [r for r in batch if isinstance(r, _Mark)]
        done = [r for r in batch if isinstance(r, _Done)]
        outcomes: list[queue.Outcome] = []
        skipped: list[int] = []
        for request in done:
            outcome = request.outcome or self._result(request)
            if outcome is None:
                skipped.append(request.outgoing.pk)
            else:
                outcomes.append(outcome)
        try:
            states, allowed = queue.commit(outcomes, [(m.outgoing, m.data) for m in marks], skipped,
                                           self.stats.worker)
        except BaseException:
            for mark in marks:
                mark.answer(False)
            raise
        for mark in marks:
            mark.answer(mark.outgoing.pk in allowed)
        self.inflight -= len(done)
        self._count(outcomes, states)

    @staticmethod
    def _result(request: _Done) -> queue.Outcome | None:
        assert request.future is not None
        try:
            result = request.future.result()
        except Exception as exc:  # a bug in the send path must not lose the message: retry it
            log.exception("sending message %s failed", request.outgoing.pk)
            return queue.Outcome(request.outgoing, sent=False, reply=_("Sending failed unexpectedly: %(error)s")
                                 % {"error": exc})
        return None if result.skipped else _outcome(request.outgoing, result)

    def _count(self, outcomes: list[queue.Outcome], states: dict[int, str]) -> None:
        for outcome in outcomes:
            state = states.get(outcome.outgoing.pk)
            if state is None:
                continue
            self.stats.states[outcome.outgoing.pk] = state
            if state == QueueState.SENT:
                self.stats.sent += 1
                _after_sent(outcome.outgoing)
            elif state == QueueState.FAILED:
                self.stats.failed += 1
            elif state == QueueState.PENDING:
                self.stats.retrying += 1

    def close(self) -> None:
        """Stop answering: connections still waiting are told not to send (their claims run out)."""
        self.closed = True
        try:
            while True:
                request = self.requests.get_nowait()
                if isinstance(request, _Mark):
                    request.answer(False)
        except queues.Empty:
            pass


def _claimed(ids: list[int]) -> list[OutgoingEmail]:
    """The claimed messages with everything composing reads, in a constant number of queries.

    A claim is mostly one account's mail (a bulk reply, a batch from the API): its accounts and
    authors are prefetched, each read once and shared by its messages, instead of a copy built per
    row by a join; the records they belong to are read together, once per type.
    """
    return list(OutgoingEmail.objects.filter(pk__in=ids).select_related("message", "message__record_type")
                .prefetch_related("attachments", "message__record", "message__created_by",
                                  Prefetch("message__account", EmailAccount.objects.select_related("domain")))
                .order_by("-priority", "next_attempt_at", "pk"))


class _Linger:
    """Whether a delivery task goes on once the queue is empty, and when it claims next.

    Mail sent one message a request (the API, agents replying) would otherwise get a task each, or
    nearly: each task's fixed costs (taking it from the queue, the claim, reading its accounts,
    recording it) then cost more than composing and sending the message. In a worker slot that
    serves outbound alone (workerpool.may_linger: never one inbound mail waits for) the task goes
    on claiming, every POLL_S while claims find less than a batch, until the queue has been empty
    for OUTBOUND_LINGER_S; after OUTBOUND_LINGER_MAX_S it stops lingering and ends at the next
    empty claim as a task always did, so the other tasks of its slot (Sent-folder copies) wait no
    longer than that. Mail committed meanwhile still enqueues a task (none waits while this one
    runs), which finds it claimed or delivers what is left."""

    def __init__(self, limit: int | None) -> None:
        self.on = limit is None and settings.OUTBOUND_LINGER_S > 0 and workerpool.may_linger(OUTBOUND)
        now = time.monotonic()
        self.until = now + settings.OUTBOUND_LINGER_MAX_S
        self.quiet_until = now + settings.OUTBOUND_LINGER_S
        self.next_claim = now
        self.idle = False  # lingering, and the last claim found nothing

    def wait(self, desk: _Desk) -> None:
        """Until the next claim, commit what the connections ask meanwhile."""
        while self.on and (left := self.next_claim - time.monotonic()) > 0:
            if desk.inflight:
                desk.serve(block=True, timeout=left)
            else:
                time.sleep(left)

    def claimed(self, found: int, size: int) -> bool:
        """After a claim that found `found` of `size`: whether to go on."""
        now = time.monotonic()
        if self.on and (now >= self.until or not workerpool.may_linger(OUTBOUND)):
            self.on = False
        self.idle = self.on and not found
        if not self.on:
            return found > 0
        if found:
            self.quiet_until = now + settings.OUTBOUND_LINGER_S
        elif now >= self.quiet_until:
            return False
        self.next_claim = now if found == size else now + POLL_S
        return True


def deliver_due(*, worker: str | None = None, batch: int | None = None, limit: int | None = None,
                pool: SMTPPool | None = None) -> DeliveryStats:
    """Send every due message (or `limit` of them). Safe to run in many processes at once."""
    stats = DeliveryStats(worker=worker or worker_name())
    pool = pool or shared_pool()
    desk = _Desk(stats, size=2 * pool.per_account)
    signer = Signer()
    home = compose._home_address()
    done = 0
    helped = False
    lingers = _Linger(limit)
    try:
        while limit is None or done < limit:
            lingers.wait(desk)
            size = min(batch or settings.OUTBOUND_BATCH, (limit - done) if limit is not None else 10**9)
            # A lingering task whose last claim found nothing reads first: on SQLite a claim takes
            # the write lock, which the pipeline and the web are waiting for.
            ids = [] if lingers.idle and not queue.anything_due() else queue.claim_due(stats.worker, size)
            if not lingers.claimed(len(ids), size):
                break
            if not ids:
                continue
            if len(ids) == size and limit is None and not helped:
                helped = True
                ask_for_help(ids[-1])
            done += len(ids)
            for outgoing in _claimed(ids):
                item = _prepare(outgoing, signer, home)  # composing the next one while the connections send
                desk.serve(block=False)
                while desk.full():
                    desk.serve(block=True)
                if isinstance(item, _Unsendable):
                    desk.failed(outgoing, item)
                else:
                    desk.send(pool, outgoing, item)
        while desk.inflight:
            desk.serve(block=True)
    finally:
        desk.close()
    schedule_next()
    return stats


def ask_for_help(message_id: int) -> None:
    """More mail is due than one claim takes: a delivery task for another worker process, which
    claims the next batches while this one sends (claims never overlap: queue.claim_due), so a big
    queue is composed and signed on more than one core (a process's threads share one). It goes
    through enqueue_delivery's coalescing: while a delivery task waits to start, none is added, so
    helpers never pile up; each helper that finds a full batch asks for the next one, as far as
    there are worker slots serving outbound (buzon.core.run_plan, which shares the connections to an
    account out among the processes). A backend that runs tasks in the
    calling process (immediate, in tests) is not asked: it would deliver here, inside this loop.
    Help is a bonus: a task queue that cannot take the task (Redis restarting) is logged, and this
    task goes on delivering what it claimed (an error here would leave its claims to the lease)."""
    try:
        if import_string(settings.OUTBOUND_TASK).get_backend().supports_defer:
            enqueue_delivery(message_id)
    except Exception:
        log.warning("could not ask another worker to help deliver", exc_info=True)


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
