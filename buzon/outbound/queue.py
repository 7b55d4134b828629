"""The outgoing queue: admit a Message, claim due ones, record each attempt's outcome.

Claiming uses `select_for_update(skip_locked=True)` where the database has it (PostgreSQL), so
several workers take disjoint batches without waiting on each other. SQLite has no row locks: there
the settings open every transaction with BEGIN IMMEDIATE, which takes the database write lock at the
start of the claim, so two workers' claims run one after the other and can never pick the same rows.

Why a crash never loses a message, and which ones it may send twice:
- A queued message is a committed `OutgoingEmail` row (state pending) before any task runs.
- A claim (state claimed, `claimed_at`) is a lease. A worker that dies leaves its claims behind; once
  the lease (`OUTBOUND_CLAIM_LEASE_S`) runs out, any worker claims them again, so a restart resumes.
- Before a connection starts a message's SMTP transaction, the message is committed as `sending`
  together with the exact bytes it will send (`mark_sending`), and only if this worker still holds
  its claim. Its outcome is committed before the same connection starts its next message (the
  sender commits requests in the order connections make them). So at any instant a connection has
  at most one message that the server may have accepted without Buzón having recorded it: the one
  in state `sending`.
- The rule after a crash: a `claimed` message whose lease ran out was never handed to a server and
  is simply sent. A `sending` message whose lease ran out *may have been sent*: its attempt is
  logged as "unknown" with that explanation, and it is sent again with the very bytes stored at
  its mark (same Message-ID, same DKIM signature), because losing mail is worse than delivering
  it twice, and receivers that deduplicate on Message-ID show it once.
- So a crash sends at most the message in flight twice, one per connection the dead worker had
  open (`OUTBOUND_CONNECTIONS_PER_ACCOUNT` per account; 1 gives exactly "at most one"), and never
  a message it had not started. tests/outbound/test_crash.py kills a worker with SIGKILL mid-run
  and counts.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import nh3
from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from buzon.core import pg_binary, public_url
from buzon.core.language import language_of
from buzon.messages.models import Message, MessageStatus
from buzon.messages.outbox import ComposeRequest, SendRefused
from buzon.outbound import addresses, compose, confirm
from buzon.outbound.models import (
    AttemptOutcome,
    DeliveryAttempt,
    OutgoingAttachment,
    OutgoingEmail,
    QueueState,
    Unsubscribe,
)
from buzon.sync.fastinsert import (
    column,
    insert_rows,
    insert_rows_returning,
    model_field,
    preparer,
    unnest_sql,
)


def _drop_unsubscribed(message: Message, gone: set[str]) -> None:
    """Bulk mail never reaches an address that unsubscribed from this account (``gone``)."""
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


def _check_addresses(message: Message, kind: str) -> None:
    """Refuse, naming it, an address that could never be sent (see addresses.py): recipients, and the
    From/Reply-To the message will carry. Whether a non-ASCII local part can go depends on
    the server (SMTPUTF8), known only when sending: such an address is accepted here."""
    assert message.account is not None
    # The user's own address is written only as the Reply-To of an account that sends answers to them.
    user_email = message.created_by.email if kind == "normal" and message.created_by \
        and message.account.replies_to_agent else ""
    for field in ("to", "cc", "bcc"):  # the refusal names the field the address was given in
        try:
            for value in getattr(message, field):
                addresses.parse(value)
        except addresses.AddressError as exc:
            raise SendRefused(str(exc), field=field) from exc
    try:
        for sender in (message.account.email_address, user_email):
            if sender:
                addresses.mailbox("", sender)
    except addresses.AddressError as exc:
        raise SendRefused(str(exc)) from exc


def check(sends: Sequence[tuple[Message, ComposeRequest]]) -> list[SendRefused | None]:
    """settings.OUTBOUND_CHECK: before anything is written, whether the queue takes each unsaved
    message (None) or why not. Addresses that could never be sent, a sender not yet confirmed
    (normal mail), recipients who unsubscribed (bulk mail: dropped, refused when none is left).
    HTML is sanitised here (the request keeps the source, as written). The database is asked once
    per account, however many messages name it."""
    confirmed: dict[int, bool] = {}
    unsubscribed: dict[int, set[str]] = {}
    languages: dict[int | None, str] = {}
    verdicts: list[SendRefused | None] = []
    for message, request in sends:
        account = message.account
        assert account is not None
        try:
            _check_addresses(message, request.kind)
            # The sender's name, which composing writes in the From header: "Ana vía Tienda" in the
            # language of the person sending (their choice, or the site's), read once per person.
            # The message is indexed for search with it once, not again when sending fills it in.
            author = compose.author_of(message, request.kind)
            key = author.pk if author is not None else None
            if key not in languages:
                languages[key] = language_of(author)
            with translation.override(languages[key]):
                message.from_name = compose.stored_name(compose.shown_name(message, account, request.kind),
                                                        account.email_address)
            if request.kind == "normal":
                if account.pk not in confirmed:
                    confirmed[account.pk] = confirm.is_confirmed(account)
                if not confirmed[account.pk]:
                    raise confirm.not_confirmed(account)
            if request.kind == "bulk":
                if account.pk not in unsubscribed:
                    unsubscribed[account.pk] = set(Unsubscribe.objects.filter(account=account).values_list(
                        "address", flat=True))
                _drop_unsubscribed(message, unsubscribed[account.pk])
        except SendRefused as refused:
            verdicts.append(refused)
            continue
        if message.html:
            request.html_source = message.html
            message.html = nh3.clean(message.html)
        verdicts.append(None)
    return verdicts


def admit(sends: Sequence[tuple[Message, ComposeRequest]]) -> None:
    """settings.OUTBOUND_ADMIT: the queue entries of stored messages that `check` took, in
    queue_outgoing's transaction: one insert per table."""
    now = timezone.now()
    base_url = public_url.request_base()[:300]
    entries = [OutgoingEmail(
        message=message, kind=request.kind, priority=request.priority, send_at=request.send_at,
        next_attempt_at=max(request.send_at, now) if request.send_at else now,
        max_attempts=settings.OUTBOUND_MAX_ATTEMPTS, html_source=request.html_source,
        headers=dict(request.headers), base_url=base_url,
    ) for message, request in sends]
    if any(request.attachments for _message, request in sends):
        insert_rows_returning(entries)
    else:
        insert_rows(entries)
    insert_rows([OutgoingAttachment(outgoing=outgoing, filename=a.filename, mimetype=a.mimetype, content=a.content)
                 for outgoing, (_message, request) in zip(entries, sends, strict=True) for a in request.attachments])


IN_HAND = (QueueState.CLAIMED, QueueState.SENDING)  # states in which a worker holds the message


def maybe_sent_text() -> str:
    return _("The worker sending this message stopped before the server's answer was recorded, so it may "
             "have been delivered. It is sent again (same Message-ID); a recipient may receive it twice.")


def _due(now: datetime.datetime) -> Any:
    stale = now - datetime.timedelta(seconds=settings.OUTBOUND_CLAIM_LEASE_S)
    return OutgoingEmail.objects.filter(Q(state=QueueState.PENDING) | Q(state__in=IN_HAND, claimed_at__lt=stale),
                                        next_attempt_at__lte=now)


def anything_due(now: datetime.datetime | None = None) -> bool:
    """Whether `claim_due` would find a message now: a read, no write lock (SQLite) or row locks."""
    return bool(_due(now or timezone.now()).exists())


def claim_due(worker: str, limit: int, now: datetime.datetime | None = None) -> list[int]:
    """Claim up to `limit` due messages (highest priority, then oldest due) for `worker`.

    A message left `sending` by a worker whose lease ran out is logged as "maybe sent" (see the
    module docstring) and claimed like the others.
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = _due(now).order_by("-priority", "next_attempt_at", "pk")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        rows = list(due.values_list("pk", "state", "attempts")[:limit])
        ids = [pk for pk, _state, _attempts in rows]
        if ids:
            maybe_sent = [(pk, attempts) for pk, state, attempts in rows if state == QueueState.SENDING]
            if maybe_sent:
                DeliveryAttempt.objects.bulk_create([
                    DeliveryAttempt(outgoing_id=pk, number=attempts + 1, outcome=AttemptOutcome.UNKNOWN,
                                    reply=maybe_sent_text()) for pk, attempts in maybe_sent])
                OutgoingEmail.objects.filter(pk__in=[pk for pk, _a in maybe_sent]).update(
                    attempts=models.F("attempts") + 1)
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


@functools.cache
def _column_sql(model: type[models.Model], fields: tuple[str, ...], key: str) -> str:
    """UPDATE … SET col = %s … WHERE key = %s; names come from the models, never from input."""
    q = connection.ops.quote_name
    sets = ", ".join(f"{column(model, f)} = %s" for f in fields)
    return f"UPDATE {q(model._meta.db_table)} SET {sets} WHERE {column(model, key)} = %s"  # noqa: S608  # nosec B608


@functools.cache
def _value(model: type[models.Model], name: str) -> Callable[[models.Model], Any]:
    """The database value of a field of an object (fastinsert.preparer: plain values as they are)."""
    return preparer(model_field(model, name), inserting=False)


def _row(obj: models.Model, fields: tuple[str, ...], key: str) -> list[Any]:
    model = type(obj)
    return [_value(model, f)(obj) for f in (*fields, key)]


_QUEUE_FIELDS = ("attempts", "state", "sent_at", "next_attempt_at", "last_code", "last_reply", "claimed_by",
                 "claimed_at")
_MESSAGE_FIELDS = ("status", "status_reason", "date", "updated_at", "from_address", "from_name", "reply_to")


def _held(pks: Sequence[int], worker: str) -> set[int]:
    """Which of these messages this worker still holds (locked until commit where rows can be).

    Plain SQL: this runs once per group the sender commits, and building the ORM query cost more
    than the transaction itself.
    """
    if not pks:
        return set()
    q = connection.ops.quote_name
    key = column(OutgoingEmail, "message")
    sql = (f"SELECT {key} FROM {q(OutgoingEmail._meta.db_table)} WHERE {key} IN ({', '.join(['%s'] * len(pks))})"  # noqa: S608  # nosec B608
           f" AND {q('state')} IN (%s, %s) AND {q('claimed_by')} = %s")
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*pks, *(str(state) for state in IN_HAND), worker])
        return {row[0] for row in cursor.fetchall()}


_ATTEMPT_FIELDS = ("outgoing", "number", "at", "outcome", "code", "reply", "server")


@functools.cache
def _insert_sql(model: type[models.Model], fields: tuple[str, ...]) -> str:
    q = connection.ops.quote_name
    columns = ", ".join(column(model, f) for f in fields)
    return f"INSERT INTO {q(model._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"  # noqa: S608  # nosec B608


def _insert_attempts(attempts: Sequence[DeliveryAttempt]) -> None:
    """DeliveryAttempt.objects.bulk_create, without its per-call cost (see _held)."""
    with connection.cursor() as cursor:
        cursor.executemany(_insert_sql(DeliveryAttempt, _ATTEMPT_FIELDS),
                           [[_value(DeliveryAttempt, f)(a) for f in _ATTEMPT_FIELDS] for a in attempts])


def _attempts(mine: Sequence[Outcome], now: datetime.datetime) -> list[DeliveryAttempt]:
    """Each outcome applied to its message and queue entry (`_apply`), and its attempt to insert."""
    return [DeliveryAttempt(outgoing=o.outgoing, number=o.outgoing.attempts + 1, at=now, code=o.code, reply=o.reply,
                            server=o.server, outcome=_apply(o, now)) for o in mine]


def _marked(mine: Sequence[tuple[OutgoingEmail, bytes]], now: datetime.datetime) -> None:
    for outgoing, data in mine:
        outgoing.state, outgoing.claimed_at = QueueState.SENDING, now
        if outgoing.mime is None:  # stored before it is sent: a resend after a crash is byte-identical
            outgoing.mime = data


def _record(outcomes: Sequence[Outcome], worker: str, now: datetime.datetime) -> dict[int, str]:
    held = _held([o.outgoing.pk for o in outcomes], worker)
    mine = [o for o in outcomes if o.outgoing.pk in held]
    if not mine:
        return {}
    attempts = _attempts(mine, now)
    with connection.cursor() as cursor:
        cursor.executemany(_column_sql(OutgoingEmail, _QUEUE_FIELDS, "message"),
                           [_row(o.outgoing, _QUEUE_FIELDS, "message") for o in mine])
        with_mime = [o.outgoing for o in mine if o.mime is not None]
        if with_mime:
            cursor.executemany(_column_sql(OutgoingEmail, ("mime",), "message"),
                               [_row(o, ("mime",), "message") for o in with_mime])
        cursor.executemany(_column_sql(Message, _MESSAGE_FIELDS, "id"),
                           [_row(o.outgoing.message, _MESSAGE_FIELDS, "id") for o in mine])
    _insert_attempts(attempts)
    return {o.outgoing.pk: str(o.outgoing.state) for o in mine}


def _mark(marks: Sequence[tuple[OutgoingEmail, bytes]], worker: str, now: datetime.datetime) -> set[int]:
    held = _held([o.pk for o, _data in marks], worker)
    mine = [(o, data) for o, data in marks if o.pk in held]
    if not mine:
        return set()
    _marked(mine, now)
    with connection.cursor() as cursor:
        cursor.executemany(_column_sql(OutgoingEmail, ("state", "claimed_at", "mime"), "message"),
                           [_row(o, ("state", "claimed_at", "mime"), "message") for o, _data in mine])
    return {o.pk for o, _data in mine}


def commit(outcomes: Sequence[Outcome], marks: Sequence[tuple[OutgoingEmail, bytes]], skipped: Sequence[int],
           worker: str) -> tuple[dict[int, str], set[int]]:
    """One transaction for what the sender's connections asked since the last one, in this order:
    the attempts that ended (as `record_outcomes`), the claims handed back unsent (`skipped`), then
    the messages about to be sent, marked `sending` with their bytes if this worker still holds them.
    Returns ({id: new queue state}, {ids marked sending}); a message not in the second set must not
    be sent. Outcomes first: a connection's previous message is recorded before its next is marked.
    """
    now = timezone.now()
    if not skipped and _one_statement_fits(outcomes, marks):
        return _commit_in_one_statement(outcomes, marks, worker, now)
    with transaction.atomic():
        states = _record(outcomes, worker, now) if outcomes else {}
        if skipped:
            _release(skipped, worker)
        marked = _mark(marks, worker, now) if marks else set()
    return states, marked


#: The most message bytes a group commit sends as one statement (an array of them, in binary
#: format: ``fastinsert.unnest_sql``), far below PostgreSQL's 1 GB for a parameter; a group of larger
#: messages goes statement by statement.
ONE_STATEMENT_MAX_BYTES = 8 * 1024 * 1024


def _one_statement_fits(outcomes: Sequence[Outcome], marks: Sequence[tuple[OutgoingEmail, bytes]]) -> bool:
    """PostgreSQL (one statement that writes several tables: data-modifying WITH), and a group small
    enough."""
    if connection.vendor != "postgresql":
        return False
    size = sum(len(o.mime) for o in outcomes if o.mime is not None)
    size += sum(len(data) for o, data in marks if o.mime is None)
    return size <= ONE_STATEMENT_MAX_BYTES


@functools.cache
def _group_commit_sql() -> str:
    """`commit` as one PostgreSQL statement, the same for any number of rows (arrays, unnest):
    - `recorded`: the outcomes written to the queue entries this worker still holds (the UPDATE's
      WHERE is checked again on the locked row, as `_held`'s FOR UPDATE makes sure);
    - the records and the attempts of exactly those entries;
    - `marked`: the messages about to be sent, committed as `sending` with their bytes, if held.
    Its result: (true, id) for each recorded outcome, (false, id) for each mark."""
    q = connection.ops.quote_name
    table = q(OutgoingEmail._meta.db_table)
    key = column(OutgoingEmail, "message")

    def sets(model: type[models.Model], fields: Sequence[str]) -> str:
        return ", ".join(f"{column(model, f)} = v.{column(model, f)}" for f in fields)

    held = f"t.{key} = v.{key} AND t.{q('state')} IN (%s, %s) AND t.{q('claimed_by')} = %s"
    mime = f"{q('mime')} = COALESCE(v.{q('mime')}, t.{q('mime')})"
    message_key = column(Message, "id")
    attempt_columns = ", ".join(column(DeliveryAttempt, f) for f in _ATTEMPT_FIELDS)
    attempt_key = column(DeliveryAttempt, "outgoing")
    # names from the models, values as parameters
    return (
        f"WITH recorded AS (UPDATE {table} AS t SET {sets(OutgoingEmail, _QUEUE_FIELDS)}, {mime} "  # noqa: S608  # nosec B608
        f"FROM {unnest_sql(OutgoingEmail, ('message', *_QUEUE_FIELDS, 'mime'), 'v')} WHERE {held} RETURNING t.{key}), "
        f"records AS (UPDATE {q(Message._meta.db_table)} AS t SET {sets(Message, _MESSAGE_FIELDS)} "
        f"FROM {unnest_sql(Message, ('id', *_MESSAGE_FIELDS), 'v')} "
        f"WHERE t.{message_key} = v.{message_key} AND t.{message_key} IN (SELECT {key} FROM recorded)), "
        f"attempts AS (INSERT INTO {q(DeliveryAttempt._meta.db_table)} ({attempt_columns}) "
        f"SELECT * FROM {unnest_sql(DeliveryAttempt, _ATTEMPT_FIELDS, 'v')} "
        f"WHERE v.{attempt_key} IN (SELECT {key} FROM recorded)), "
        f"marked AS (UPDATE {table} AS t SET {q('state')} = %s, {q('claimed_at')} = %s, {mime} "
        f"FROM {unnest_sql(OutgoingEmail, ('message', 'mime'), 'v')} WHERE {held} RETURNING t.{key}) "
        f"SELECT true, {key} FROM recorded UNION ALL SELECT false, {key} FROM marked")


def _columns(model: type[models.Model], fields: Sequence[str], rows: Sequence[models.Model]) -> list[list[Any]]:
    """One list of database values per field, for `unnest`."""
    return [[_value(model, f)(row) for row in rows] for f in fields]


def _commit_in_one_statement(outcomes: Sequence[Outcome], marks: Sequence[tuple[OutgoingEmail, bytes]],
                             worker: str, now: datetime.datetime) -> tuple[dict[int, str], set[int]]:
    """`commit` on PostgreSQL, where each statement is a round trip to another process and the
    connections wait for their marks: every write in one statement (`_group_commit_sql`), atomic
    by itself, so no BEGIN and COMMIT either; instead of a transaction of a look-up and three or
    four writes. The same rows end as `_record` and `_mark` leave them."""
    reported = {o.outgoing.pk for o in outcomes}
    # A message reported in this group is recorded, so no longer held when its mark would be looked
    # at (`_mark` runs after `_record`); and one statement must not update a row twice.
    marks = [(o, data) for o, data in marks if o.pk not in reported]
    # Each outcome is applied before the database says which are held: the objects of those it
    # does not hold are put back as they were, as `_record` leaves them.
    before = [(o.outgoing, dict(o.outgoing.__dict__), o.outgoing.message, dict(o.outgoing.message.__dict__))
              for o in outcomes]
    attempts = _attempts(outcomes, now)
    entries = [o.outgoing for o in outcomes]
    in_hand = [str(state) for state in IN_HAND]
    params: list[Any] = [
        *_columns(OutgoingEmail, ("message", *_QUEUE_FIELDS), entries), [o.mime for o in outcomes], *in_hand, worker,
        *_columns(Message, ("id", *_MESSAGE_FIELDS), [o.message for o in entries]),
        *_columns(DeliveryAttempt, _ATTEMPT_FIELDS, attempts),
        str(QueueState.SENDING), now, [o.pk for o, _data in marks],
        [data if o.mime is None else None for o, data in marks], *in_hand, worker]
    recorded: set[int] = set()
    try:
        with pg_binary.binary_cursor() as cursor:  # arrays and the messages' bytes in binary format
            cursor.execute(_group_commit_sql(), params)
            rows = cursor.fetchall()
        recorded = {pk for was_outcome, pk in rows if was_outcome}
    finally:  # on an error too: nothing was written
        for outgoing, saved, message, message_saved in before:
            if outgoing.pk not in recorded:
                outgoing.__dict__.update(saved)
                message.__dict__.update(message_saved)
    marked = {pk for was_outcome, pk in rows if not was_outcome}
    _marked([(o, data) for o, data in marks if o.pk in marked], now)
    return {o.outgoing.pk: str(o.outgoing.state) for o in outcomes if o.outgoing.pk in recorded}, marked


def mark_sending(marks: Sequence[tuple[OutgoingEmail, bytes]], worker: str) -> set[int]:
    """Commit these messages as `sending` (see `commit`); returns the ids that may be sent."""
    return commit([], marks, [], worker)[1]


def record_outcomes(outcomes: Sequence[Outcome], worker: str) -> dict[int, str]:
    """Commit a group of attempts in one transaction; returns {id: new queue state}.

    A message whose claim this worker no longer holds (its lease ran out and another worker took it
    over) is left alone, so a slow worker never overwrites the newer attempt. Rows are written with
    one prepared statement per table (executemany): Django's bulk_update builds a CASE per field and
    row, which cost more than sending the mail.
    """
    return commit(outcomes, [], [], worker)[0] if outcomes else {}


def record_outcome(outgoing_id: int, *, sent: bool, permanent: bool, code: int | None, reply: str,
                   server: str, worker: str) -> str:
    """Commit one attempt (see record_outcomes). Returns the new queue state, or "" if not ours."""
    outgoing = OutgoingEmail.objects.select_related("message").get(pk=outgoing_id)
    states = record_outcomes([Outcome(outgoing, sent, permanent, code, reply, server)], worker)
    return states.get(outgoing_id, "")


def _release(outgoing_ids: Sequence[int], worker: str) -> None:
    held = list(OutgoingEmail.objects.filter(pk__in=outgoing_ids, state__in=IN_HAND, claimed_by=worker)
                .values_list("pk", flat=True))
    OutgoingEmail.objects.filter(pk__in=held).update(state=QueueState.PENDING, claimed_by="", claimed_at=None)
    Message.objects.filter(pk__in=held, status=MessageStatus.SENDING).update(status=MessageStatus.QUEUED)


def release(outgoing_ids: Sequence[int], worker: str) -> None:
    """Hand back claims this worker did not send (e.g. shutting down): no attempt is counted."""
    with transaction.atomic():
        _release(outgoing_ids, worker)


def requeue(outgoing: OutgoingEmail) -> None:
    """Admin action: try a failed message again now, with a fresh attempt budget."""
    with transaction.atomic():
        OutgoingEmail.objects.filter(pk=outgoing.pk).update(
            state=QueueState.PENDING, next_attempt_at=timezone.now(),
            max_attempts=outgoing.attempts + settings.OUTBOUND_MAX_ATTEMPTS)
        Message.objects.filter(pk=outgoing.pk).update(status=MessageStatus.QUEUED, status_reason="")
