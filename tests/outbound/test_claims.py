"""Claims never overlap: concurrent workers on SQLite (BEGIN IMMEDIATE) and PostgreSQL (SKIP LOCKED)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection

from buzon.messages.outbox import queue_outgoing
from buzon.outbound import queue
from buzon.outbound.models import OutgoingEmail, QueueState


def _claim_concurrently(workers: int, per_claim: int) -> list[list[int]]:
    results: list[list[int]] = [[] for _ in range(workers)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(workers)

    def run(n: int) -> None:
        barrier.wait()
        try:
            while True:
                try:
                    ids = queue.claim_due(f"w{n}", per_claim)
                except OperationalError as exc:
                    # The test database is in-memory SQLite with a shared cache, which answers "locked"
                    # at once where a database file waits (busy_timeout): wait here instead.
                    if "locked" not in str(exc):
                        raise
                    time.sleep(0.005)
                    continue
                if not ids:
                    return
                results[n].extend(ids)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def _queue(make_account: Any, n: int) -> None:
    account = make_account()
    for i in range(n):
        queue_outgoing(to=f"c{i}@example.org", subject="s", text="x", account=account)


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_are_disjoint_on_this_database(make_account: Any) -> None:
    _queue(make_account, 60)
    results = _claim_concurrently(4, 7)
    claimed = [pk for r in results for pk in r]
    assert len(claimed) == len(set(claimed)) == 60
    assert OutgoingEmail.objects.filter(state=QueueState.CLAIMED).count() == 60


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_skip_locked_on_postgres(make_account: Any, postgres_url: str) -> None:
    assert connection.vendor == "postgresql"
    _queue(make_account, 60)
    results = _claim_concurrently(4, 5)
    claimed = [pk for r in results for pk in r]
    assert len(claimed) == len(set(claimed)) == 60
    assert sum(1 for r in results if r) > 1  # SKIP LOCKED let several workers claim at once


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_send_and_record_on_postgres(make_account: Any, smtp_starttls: Any, pool: Any, postgres_url: str) -> None:
    from buzon.outbound.sender import deliver_due

    account = make_account(smtp_starttls)
    smtp_starttls.handler.fail_data.append("451 4.3.0 later")
    for i in range(5):
        queue_outgoing(to=f"c{i}@example.org", subject="s", text="x", account=account)
    stats = deliver_due(pool=pool)
    assert (stats.sent, stats.retrying) == (4, 1)


@pytest.mark.django_db
def test_send_queued_command(make_account: Any, smtp_starttls: Any, capsys: Any) -> None:
    account = make_account(smtp_starttls)
    queue_outgoing(to="c@example.org", subject="s", text="x", account=account)
    call_command("send_queued")
    assert len(smtp_starttls.messages) == 1
    assert "sent 1" in capsys.readouterr().out


#: A message's bytes as a mail server may be sent them: 8-bit, a NUL, what array literals quote.
MARKED = b"marked bytes \x00 \\ \"{a,b}\" NULL \xff\xfe " + "ñ".encode("latin-1")


def _group_commit_scenario(account: Any, commit: Any) -> tuple[Any, ...]:
    """Six claimed messages: one sent, one to retry, one failed for good, one marked sending, one
    reported and marked in the same group (recorded, so no longer held: not marked), and one taken
    over by another worker, reported and marked (left alone). What the rows hold afterwards."""
    from buzon.messages.models import Message
    from buzon.outbound.models import DeliveryAttempt

    for i in range(6):
        queue_outgoing(to=f"c{i}@example.org", subject=f"s{i}", text="x", account=account)
    ids = queue.claim_due("w", 10)
    OutgoingEmail.objects.filter(pk=ids[5]).update(claimed_by="other")
    rows = {o.pk: o for o in OutgoingEmail.objects.select_related("message").filter(pk__in=ids)}
    rows[ids[0]].message.reply_to = ["Ventas \"Norte\" <ventas@example.org>"]
    rows[ids[0]].message.from_name = 'Tienda {Norte}, "la buena"'
    outcomes = [queue.Outcome(rows[ids[0]], sent=True, code=250, reply="250 ok", server="smtp", mime=b"sent bytes"),
                queue.Outcome(rows[ids[1]], sent=False, code=451, server="smtp",
                              reply='451 later: {"a", b}, \\ NULL ñ\n'),  # what an array literal must quote
                queue.Outcome(rows[ids[2]], sent=False, permanent=True, code=550, reply="550 no", server="smtp"),
                queue.Outcome(rows[ids[4]], sent=False, code=421, reply="421 busy", server="smtp"),
                queue.Outcome(rows[ids[5]], sent=True, code=250, reply="250 ok", server="smtp")]
    marks = [(rows[ids[3]], MARKED), (rows[ids[4]], b"again"), (rows[ids[5]], b"late")]
    states, marked = commit(outcomes, marks)
    outgoing = [(o.state, o.attempts, o.sent_at is not None, o.next_attempt_at is not None, o.last_code, o.last_reply,
                 o.claimed_by, o.claimed_at is not None, bytes(o.mime) if o.mime is not None else None)
                for o in OutgoingEmail.objects.filter(pk__in=ids).order_by("pk")]
    messages = list(Message.objects.filter(pk__in=ids).order_by("pk").values_list(
        "status", "status_reason", "subject", "from_name", "reply_to"))
    sent_dated = [m.date is not None and m.date >= m.created_at
                  for m in Message.objects.filter(pk__in=ids).order_by("pk")]
    attempts = list(DeliveryAttempt.objects.filter(outgoing_id__in=ids).order_by("outgoing_id")
                    .values_list("outgoing_id", "number", "outcome", "code", "reply", "server"))
    attempts = [(ids.index(a[0]), *a[1:]) for a in attempts]
    return ({ids.index(k): v for k, v in states.items()}, sorted(ids.index(k) for k in marked), outgoing, messages,
            sent_dated, attempts)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_group_commit_on_postgres_writes_what_the_statement_by_statement_path_writes(
        make_account: Any, postgres_url: str) -> None:
    """On PostgreSQL `queue.commit` is one statement (no BEGIN, no look-up first); the rows end as
    `_record` and `_mark` leave them, one statement at a time, and a message another worker took
    over is left alone, in the database and in memory."""
    from django.db import transaction
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from buzon.messages.models import Message
    from buzon.outbound.models import DeliveryAttempt

    assert connection.vendor == "postgresql"
    account = make_account()

    def together(outcomes: Any, marks: Any) -> Any:
        taken_over = outcomes[-1].outgoing
        with CaptureQueriesContext(connection) as queries:
            result = queue.commit(outcomes, marks, [], "w")
        assert [q["sql"].split()[0] for q in queries.captured_queries] == ["WITH"]  # one statement, atomic alone
        # the bytes are bound as they are, not written into the statement's text as hex
        assert MARKED[:12].hex() not in queries.captured_queries[0]["sql"]
        assert (taken_over.state, taken_over.attempts, taken_over.message.status) == ("claimed", 0, "sending")
        return result

    one_query = _group_commit_scenario(account, together)
    DeliveryAttempt.objects.all().delete()
    OutgoingEmail.objects.all().delete()
    Message.objects.all().delete()

    def one_by_one(outcomes: Any, marks: Any) -> Any:
        now = timezone.now()
        with transaction.atomic():
            return queue._record(outcomes, "w", now), queue._mark(marks, "w", now)

    assert one_query == _group_commit_scenario(account, one_by_one)
    states, marked, outgoing, _messages, _dated, attempts = one_query
    assert states == {0: "sent", 1: "pending", 2: "failed", 4: "pending"} and marked == [3]
    assert outgoing[0][-1] == b"sent bytes" and outgoing[3][0] == "sending" and outgoing[3][-1] == MARKED
    assert outgoing[4][0] == "pending" and outgoing[4][6] == "" and outgoing[4][-1] is None
    assert outgoing[5][0] == "claimed" and outgoing[5][6] == "other" and outgoing[5][-1] is None
    assert [a[0] for a in attempts] == [0, 1, 2, 4] and [a[2] for a in attempts] == ["sent", "retry", "failed", "retry"]
    assert outgoing[1][5] == '451 later: {"a", b}, \\ NULL ñ\n' and attempts[1][4] == outgoing[1][5]
    assert _messages[0][3:] == ('Tienda {Norte}, "la buena"', ['Ventas "Norte" <ventas@example.org>'])


def test_a_group_of_large_messages_is_not_sent_as_one_statement(make_account: Any) -> None:
    """PostgreSQL takes at most 1 GB in a parameter, and a large array of bytes costs it more than a
    statement a row: a group over the bound goes statement by statement (and SQLite always does)."""
    big = b"x" * (queue.ONE_STATEMENT_MAX_BYTES + 1)
    outgoing = OutgoingEmail()
    assert not queue._one_statement_fits([], [(outgoing, big)])
    assert queue._one_statement_fits([], [(outgoing, b"small")]) == (connection.vendor == "postgresql")
