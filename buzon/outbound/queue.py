"""The outgoing queue: admit a Message, claim due ones, record each attempt's outcome.

Claiming uses `select_for_update(skip_locked=True)` where the database has it (PostgreSQL), so
several workers take disjoint batches without waiting on each other. SQLite has no row locks: there
the settings open every transaction with BEGIN IMMEDIATE, which takes the database write lock at the
start of the claim, so two workers' claims run one after the other and can never pick the same rows.

Why a crash never loses a message and sends at most the in-flight ones twice:
- A queued message is a committed `OutgoingEmail` row (state pending) before any task runs.
- A claim (state claimed, `claimed_at`) is a lease. A worker that dies leaves its claims behind; once
  the lease (`OUTBOUND_CLAIM_LEASE_S`) runs out, any worker claims them again, so a restart resumes.
- Each message's outcome is committed right after the server answers its DATA, one message at a time
  per connection. The only message that can be sent twice is one the server accepted but whose
  outcome was not yet committed when the process died: at most one per open SMTP connection
  (`OUTBOUND_CONNECTIONS_PER_ACCOUNT`), and each is resent with the same Message-ID, so receivers
  that deduplicate on it show it once.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import nh3
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from buzon.messages.models import Message, MessageStatus
from buzon.messages.outbox import ComposeRequest, SendRefused
from buzon.outbound import confirm
from buzon.outbound.models import (
    AttemptOutcome,
    DeliveryAttempt,
    OutgoingAttachment,
    OutgoingEmail,
    QueueState,
    Unsubscribe,
)


def _drop_unsubscribed(message: Message) -> None:
    """Bulk mail never reaches an address that unsubscribed from this account."""
    gone = set(Unsubscribe.objects.filter(account=message.account).values_list("address", flat=True))
    if not gone:
        return
    for field in ("to", "cc", "bcc"):
        kept = [a for a in getattr(message, field) if _bare(a) not in gone]
        setattr(message, field, kept)
    if not (message.to or message.cc or message.bcc):
        raise SendRefused(_("Every recipient has unsubscribed from mail sent by %(address)s.")
                          % {"address": message.account.email_address if message.account else ""})


def _bare(address: str) -> str:
    from email.utils import parseaddr

    return parseaddr(address)[1].strip().lower()


def admit(message: Message, request: ComposeRequest) -> OutgoingEmail:
    """settings.OUTBOUND_ADMIT: store the queue entry inside queue_outgoing's transaction."""
    assert message.account is not None
    if request.kind == "normal":
        confirm.require_confirmed(message.account)
    if request.kind == "bulk":
        _drop_unsubscribed(message)
    html_source = message.html
    if html_source:
        message.html = nh3.clean(html_source)
    message.save(update_fields=["to", "cc", "bcc", "html"])
    now = timezone.now()
    outgoing = OutgoingEmail.objects.create(
        message=message, kind=request.kind, priority=request.priority, send_at=request.send_at,
        next_attempt_at=max(request.send_at, now) if request.send_at else now,
        max_attempts=settings.OUTBOUND_MAX_ATTEMPTS, html_source=html_source, headers=dict(request.headers),
    )
    OutgoingAttachment.objects.bulk_create([
        OutgoingAttachment(outgoing=outgoing, filename=a.filename, mimetype=a.mimetype, content=a.content)
        for a in request.attachments
    ])
    return outgoing


def claim_due(worker: str, limit: int, now: datetime.datetime | None = None) -> list[int]:
    """Claim up to `limit` due messages (highest priority, then oldest due) for `worker`."""
    now = now or timezone.now()
    stale = now - datetime.timedelta(seconds=settings.OUTBOUND_CLAIM_LEASE_S)
    with transaction.atomic():
        due = OutgoingEmail.objects.filter(
            Q(state=QueueState.PENDING) | Q(state=QueueState.CLAIMED, claimed_at__lt=stale),
            next_attempt_at__lte=now,
        ).order_by("-priority", "next_attempt_at", "pk")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        if ids:
            OutgoingEmail.objects.filter(pk__in=ids).update(state=QueueState.CLAIMED, claimed_at=now,
                                                            claimed_by=worker)
            Message.objects.filter(pk__in=ids).update(status=MessageStatus.SENDING, updated_at=now)
    return ids


def backoff(attempt: int) -> datetime.timedelta:
    """Exponential: base, 2×base, 4×base… capped, so a server down for hours is retried calmly."""
    seconds = settings.OUTBOUND_RETRY_BASE_S * 2 ** max(0, attempt - 1)
    return datetime.timedelta(seconds=min(seconds, settings.OUTBOUND_RETRY_MAX_S))


def record_outcome(outgoing_id: int, *, sent: bool, permanent: bool, code: int | None, reply: str,
                   server: str, worker: str) -> str:
    """Commit one attempt. Returns the resulting queue state. Ignores a claim another worker took over."""
    now = timezone.now()
    with transaction.atomic():
        outgoing = OutgoingEmail.objects.select_related("message").filter(
            pk=outgoing_id, state=QueueState.CLAIMED, claimed_by=worker).first()
        if outgoing is None:
            return ""
        outgoing.attempts += 1
        message = outgoing.message
        if sent:
            outgoing.state, message.status, outcome = QueueState.SENT, MessageStatus.SENT, AttemptOutcome.SENT
            outgoing.sent_at = message.date = now
            message.status_reason = ""
        elif permanent or outgoing.attempts >= outgoing.max_attempts:
            outgoing.state, message.status = QueueState.FAILED, MessageStatus.SEND_FAILED
            outcome = AttemptOutcome.FAILED
            message.status_reason = reply
        else:
            outgoing.state, message.status, outcome = QueueState.PENDING, MessageStatus.QUEUED, AttemptOutcome.RETRY
            outgoing.next_attempt_at = now + backoff(outgoing.attempts)
            message.status_reason = reply
        outgoing.last_code, outgoing.last_reply = code, reply
        outgoing.claimed_by, outgoing.claimed_at = "", None
        outgoing.save(update_fields=["attempts", "state", "sent_at", "next_attempt_at", "last_code", "last_reply",
                                     "claimed_by", "claimed_at"])
        message.save(update_fields=["status", "status_reason", "date", "updated_at"])
        DeliveryAttempt.objects.create(outgoing=outgoing, number=outgoing.attempts, outcome=outcome, code=code,
                                       reply=reply, server=server)
    return str(outgoing.state)


def release(outgoing_ids: Sequence[int], worker: str) -> None:
    """Hand back claims this worker will not send now (e.g. shutting down): no attempt is counted."""
    with transaction.atomic():
        OutgoingEmail.objects.filter(pk__in=outgoing_ids, state=QueueState.CLAIMED, claimed_by=worker).update(
            state=QueueState.PENDING, claimed_by="", claimed_at=None)
        Message.objects.filter(pk__in=outgoing_ids, status=MessageStatus.SENDING).update(status=MessageStatus.QUEUED)


def requeue(outgoing: OutgoingEmail) -> None:
    """Admin action: try a failed message again now, with a fresh attempt budget."""
    with transaction.atomic():
        OutgoingEmail.objects.filter(pk=outgoing.pk).update(
            state=QueueState.PENDING, next_attempt_at=timezone.now(),
            max_attempts=outgoing.attempts + settings.OUTBOUND_MAX_ATTEMPTS)
        Message.objects.filter(pk=outgoing.pk).update(status=MessageStatus.QUEUED, status_reason="")
