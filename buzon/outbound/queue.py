"""The outgoing queue: admit a Message, claim due ones, record each attempt's outcome.

Claiming uses `select_for_update(skip_locked=True)` where the database has it (PostgreSQL), so
several workers take disjoint batches without waiting on each other. SQLite has no row locks: there
the settings open every transaction with BEGIN IMMEDIATE, which takes the database write lock at the
start of the claim, so two workers' claims run one after the other and can never pick the same rows.

Why a crash never loses a message and sends at most the in-flight ones twice:
- A queued message is a committed `OutgoingEmail` row (state pending) before any task runs.
- A claim (state claimed, `claimed_at`) is a lease. A worker that dies leaves its claims behind; once
  the lease (`OUTBOUND_CLAIM_LEASE_S`) runs out, any worker claims them again, so a restart resumes.
- A worker keeps at most `OUTBOUND_CONNECTIONS_PER_ACCOUNT` messages handed to SMTP but not yet
  committed (the sender's window; outcomes that arrive together are committed together). The only
  messages that can be sent twice are ones the server accepted whose outcome was not committed when
  the process died, so at most that window per worker, each with its Message-ID unchanged (receivers
  that deduplicate on Message-ID show it once).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nh3
from django.conf import settings
from django.db import connection, models, transaction
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


@dataclass
class Outcome:
    """One attempt's result, for `record_outcomes`. `mime` is stored with it (the bytes that were sent)."""

    outgoing: OutgoingEmail
    sent: bool
    permanent: bool = False
    code: int | None = None
    reply: str = ""
    server: str = ""
    mime: bytes | None = None


def _apply(outcome: Outcome, now: datetime.datetime) -> str:
    outgoing, message = outcome.outgoing, outcome.outgoing.message
    outgoing.attempts += 1
    if outcome.sent:
        outgoing.state, message.status, result = QueueState.SENT, MessageStatus.SENT, AttemptOutcome.SENT
        outgoing.sent_at = message.date = now
        message.status_reason = ""
    elif outcome.permanent or outgoing.attempts >= outgoing.max_attempts:
        outgoing.state, message.status = QueueState.FAILED, MessageStatus.SEND_FAILED
        result = AttemptOutcome.FAILED
        message.status_reason = outcome.reply
    else:
        outgoing.state, message.status, result = QueueState.PENDING, MessageStatus.QUEUED, AttemptOutcome.RETRY
        outgoing.next_attempt_at = now + backoff(outgoing.attempts)
        message.status_reason = outcome.reply
    if outcome.mime is not None:
        outgoing.mime = outcome.mime
    outgoing.last_code, outgoing.last_reply = outcome.code, outcome.reply
    outgoing.claimed_by, outgoing.claimed_at = "", None
    message.updated_at = now
    return str(result)


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


def _column_sql(model: type[models.Model], fields: list[str], key: str) -> str:
    """UPDATE … SET col = %s … WHERE key = %s; names come from the models, never from input."""
    q = connection.ops.quote_name
    sets = ", ".join(f"{q(str(_field(model, f).column))} = %s" for f in fields)
    return f"UPDATE {q(model._meta.db_table)} SET {sets} WHERE {q(str(_field(model, key).column))} = %s"  # noqa: S608  # nosec B608


def _row(obj: models.Model, fields: list[str], key: str) -> list[Any]:
    model = type(obj)
    return [_field(model, f).get_db_prep_save(getattr(obj, _field(model, f).attname), connection)
            for f in [*fields, key]]


_QUEUE_FIELDS = ["attempts", "state", "sent_at", "next_attempt_at", "last_code", "last_reply", "claimed_by",
                 "claimed_at"]
_MESSAGE_FIELDS = ["status", "status_reason", "date", "updated_at", "from_address", "from_name", "reply_to"]


def record_outcomes(outcomes: Sequence[Outcome], worker: str) -> dict[int, str]:
    """Commit a group of attempts in one transaction; returns {id: new queue state}.

    A message whose claim this worker no longer holds (its lease ran out and another worker took it
    over) is left alone, so a slow worker never overwrites the newer attempt. Rows are written with
    one prepared statement per table (executemany): Django's bulk_update builds a CASE per field and
    row, which cost more than sending the mail.
    """
    if not outcomes:
        return {}
    now = timezone.now()
    with transaction.atomic():
        owned_qs = OutgoingEmail.objects.filter(pk__in=[o.outgoing.pk for o in outcomes], state=QueueState.CLAIMED,
                                                claimed_by=worker)
        if connection.features.has_select_for_update:
            owned_qs = owned_qs.select_for_update()
        owned = set(owned_qs.values_list("pk", flat=True))
        mine = [o for o in outcomes if o.outgoing.pk in owned]
        attempts = [DeliveryAttempt(outgoing=o.outgoing, number=o.outgoing.attempts + 1, code=o.code, reply=o.reply,
                                    server=o.server, outcome=_apply(o, now)) for o in mine]
        with connection.cursor() as cursor:
            cursor.executemany(_column_sql(OutgoingEmail, _QUEUE_FIELDS, "message"),
                               [_row(o.outgoing, _QUEUE_FIELDS, "message") for o in mine])
            with_mime = [o.outgoing for o in mine if o.mime is not None]
            if with_mime:
                cursor.executemany(_column_sql(OutgoingEmail, ["mime"], "message"),
                                   [_row(o, ["mime"], "message") for o in with_mime])
            cursor.executemany(_column_sql(Message, _MESSAGE_FIELDS, "id"),
                               [_row(o.outgoing.message, _MESSAGE_FIELDS, "id") for o in mine])
        DeliveryAttempt.objects.bulk_create(attempts)
    return {o.outgoing.pk: str(o.outgoing.state) for o in mine}


def record_outcome(outgoing_id: int, *, sent: bool, permanent: bool, code: int | None, reply: str,
                   server: str, worker: str) -> str:
    """Commit one attempt (see record_outcomes). Returns the new queue state, or "" if not ours."""
    outgoing = OutgoingEmail.objects.select_related("message").get(pk=outgoing_id)
    states = record_outcomes([Outcome(outgoing, sent, permanent, code, reply, server)], worker)
    return states.get(outgoing_id, "")


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
