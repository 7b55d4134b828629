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
