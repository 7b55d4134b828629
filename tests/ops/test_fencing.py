"""Fencing: a sync process that stalled past its lease (CPU-starved, SIGSTOP) and wakes up after
another process took the account over commits nothing more for it, and drops it.

Every claim starts a new lease epoch; each commit of mail checks, in its own transaction, that the
lease row still has the committing runner's owner and epoch (buzon.sync.lease.check)."""

from __future__ import annotations

import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone

from buzon.sync import lease
from buzon.sync.models import FolderCursor, RawMessage, SyncLease
from buzon.sync.store import Incoming, Mailbox, store_batch
from tests.sync.helpers import make_account, make_mail, wait_for
from tests.sync.procs import buzon, buzon_env, stop


def _expire(account_id: int) -> None:
    SyncLease.objects.filter(account_id=account_id).update(expires_at=timezone.now() - timedelta(seconds=1))


def _store(account_id: int, address: str, uid: int) -> None:
    box = Mailbox(account_id, address, "INBOX", 7)
    store_batch(box, [Incoming(data=make_mail(uid), uid=uid)])


def _freeze_inside_a_store(url: str, dovecot, account, process) -> str:
    """Once `process` has stored the first message, catch it inside the transaction that stores the
    next one: hold the folder cursor's row, which that transaction updates after inserting the
    message, and stop the process right there (SIGSTOP). Returns the lease owner it was."""
    wait_for(lambda: RawMessage.objects.filter(account=account).count() == 1, 90)
    owner = SyncLease.objects.get(account=account).owner
    with psycopg.connect(url) as blocker:
        blocker.execute("select 1 from sync_foldercursor where account_id = %s for update", (account.pk,))
        # Only a session this blocker holds up: a session of an earlier test still waiting on a lock
        # in the same database must not be taken for the process's store.
        blocked = _blocked_by(url, blocker.info.backend_pid)
        dovecot.deliver(account.email_address, make_mail(1))
        wait_for(lambda: any("sync_foldercursor" in query for query in blocked()), 60, interval=0.2)
        process.send_signal(signal.SIGSTOP)
        wait_for(lambda: _state(process.pid) == "T", 10)
        waiting = blocked()
        blocker.rollback()
    print(f"froze {process.pid} while its session waited on: {waiting}")
    return owner


def _blocked_by(url: str, blocker_pid: int):
    def queries() -> list[str]:
        with psycopg.connect(url, autocommit=True) as conn:
            return [row[0] for row in conn.execute(
                "select query from pg_stat_activity where %s = any(pg_blocking_pids(pid))", (blocker_pid,))]
    return queries


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _dropped(account_id: int) -> tuple[str, ...]:
    """What a sync process logs when it lets an account go after a stall: its late write refused by
    the fence, its runner failing on the session the server ended, or its heartbeat finding the
    lease taken (the crash is logged when the engine next reaps its runners)."""
    return ("write refused, rolled back", "a late write was refused; account dropped",
            f"sync of account {account_id} crashed", f"lease on account {account_id} lost")


def _stop_thawed(*processes) -> None:
    for process in processes:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            stop(process)


@pytest.fixture
def fenceless():
    yield
    lease.hold(None)


@pytest.mark.django_db(transaction=True)
def test_every_claim_starts_a_new_epoch(dovecot):
    account = make_account(dovecot)
    first = lease.claim("a", [account.pk], limit=1)[account.pk]
    assert lease.claim("b", [account.pk], limit=1) == {}  # held and unexpired: not taken
    _expire(account.pk)
    second = lease.claim("b", [account.pk], limit=1)[account.pk]
    again = lease.claim("b", [account.pk], limit=1)[account.pk]  # ours already: still a new epoch
    assert (first.owner, second.owner, again.owner) == ("a", "b", "b")
    assert first.epoch < second.epoch < again.epoch
    assert lease.renew("b", [account.pk]) == {account.pk}
    assert SyncLease.objects.get(account=account).epoch == again.epoch  # renewing is not claiming


@pytest.mark.django_db(transaction=True)
def test_a_write_under_a_stale_fence_is_refused_and_rolled_back(dovecot, fenceless):
    account = make_account(dovecot)
    old = lease.claim("a", [account.pk], limit=1)[account.pk]
    lease.hold(old)
    _store(account.pk, account.email_address, 1)  # still ours: committed
    _expire(account.pk)
    new = lease.claim("b", [account.pk], limit=1)[account.pk]

    with pytest.raises(lease.LeaseLost) as refused:
        _store(account.pk, account.email_address, 2)
    assert (refused.value.now_owner, refused.value.now_epoch) == ("b", new.epoch)
    assert sorted(RawMessage.objects.filter(account=account).values_list("uid", flat=True)) == [1]

    lease.hold(new)
    _store(account.pk, account.email_address, 2)
    assert sorted(RawMessage.objects.filter(account=account).values_list("uid", flat=True)) == [1, 2]


@pytest.mark.django_db(transaction=True)
def test_a_released_lease_refuses_too_and_no_fence_is_not_checked(dovecot, fenceless):
    account = make_account(dovecot)
    fence = lease.claim("a", [account.pk], limit=1)[account.pk]
    lease.release("a", [account.pk])
    lease.hold(fence)
    with pytest.raises(lease.LeaseLost):
        _store(account.pk, account.email_address, 1)
    with pytest.raises(RuntimeError, match="under the lease of account"):
        _store(account.pk + 1, account.email_address, 1)
    with pytest.raises(RuntimeError, match="outside the transaction"):
        lease.check(account.pk)
    lease.hold(None)  # a test or tool writing without the engine
    _store(account.pk, account.email_address, 1)
    assert RawMessage.objects.filter(account=account).count() == 1


def _database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_takeover_waits_for_a_write_that_passed_its_check(dovecot, postgres_url, fenceless):
    """Between the check and the commit the lease row is locked: the claimer skips the account."""
    account = make_account(dovecot)
    fence = lease.claim("a", [account.pk], limit=1)[account.pk]
    _expire(account.pk)
    lease.hold(fence)
    checked, release = threading.Event(), threading.Event()
    seen: list[dict[int, lease.Fence]] = []

    def claimer() -> None:
        checked.wait(10)
        seen.append(lease.claim("b", [account.pk], limit=1))
        release.set()
        connection.close()

    thread = threading.Thread(target=claimer)
    thread.start()
    with transaction.atomic():
        lease.check(account.pk)  # expired but not taken: still ours
        checked.set()
        release.wait(10)
    thread.join(10)
    assert seen == [{}]
    assert lease.claim("b", [account.pk], limit=1)[account.pk].epoch == fence.epoch + 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_renewal_never_waits_for_a_store(dovecot, postgres_url, fenceless):
    """A transaction storing several accounts' batches checks their leases one by one while the
    heartbeat renews them all at once: if either waited for the other they could deadlock (they did,
    under load, with a FOR NO KEY UPDATE check)."""
    accounts = [make_account(dovecot) for _ in range(2)]
    fences = lease.claim("a", [a.pk for a in accounts], limit=2)
    renewed: list[set[int]] = []

    def heartbeat() -> None:
        renewed.append(lease.renew("a", [a.pk for a in reversed(accounts)]))
        connection.close()

    with transaction.atomic():
        for account in accounts:
            with transaction.atomic():
                lease.hold(fences[account.pk])
                _store(account.pk, account.email_address, 1)
        thread = threading.Thread(target=heartbeat)
        thread.start()
        thread.join(5)
        assert renewed == [{a.pk for a in accounts}], "the renewal waited for the storing transaction"
    assert RawMessage.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sync_process_stopped_past_a_takeover_commits_nothing_and_drops_the_account(
        dovecot, postgres_url, tmp_path: Path):
    account = make_account(dovecot)
    dovecot.deliver(account.email_address, make_mail(0))
    url = _database_url()
    # a short lease; an IMAP timeout longer than the stall, so A's late write is really attempted
    env = buzon_env(url, tmp_path, BUZON_SYNC_LEASE="3", BUZON_SYNC_TIMEOUT="300", BUZON_HEARTBEAT="1")
    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
    a = buzon(env, "sync", log=a_log)
    b = None
    try:
        a_owner = _freeze_inside_a_store(url, dovecot, account, a)
        # A is frozen with message 1 inserted but not committed, its lease running out; B takes over.
        b = buzon(env, "sync", log=b_log)
        wait_for(lambda: SyncLease.objects.filter(account=account).exclude(owner=a_owner)
                 .exclude(owner="").exists(), 60)
        a.send_signal(signal.SIGCONT)
        wait_for(lambda: RawMessage.objects.filter(account=account).count() == 2, 60)
        # Message 1 was committed by B, not by the stalled A (else B would have found it stored).
        wait_for(lambda: f"stored account={account.pk} folder=INBOX count=1" in b_log.read_text(errors="replace"),
                 30)
        # A's late write is refused by its fence; on a loaded machine B may take longer to start than
        # the server waits for A's frozen session (twice the lease, at least 10 s), and then A finds
        # its connection ended instead. Either way A commits nothing and lets the account go.
        wait_for(lambda: any(line in a_log.read_text(errors="replace") for line in _dropped(account.pk)), 60)
        held = SyncLease.objects.get(account=account)
        assert held.owner != a_owner and held.epoch == 2
        assert a.poll() is None  # A dropped the account; it did not crash
        assert FolderCursor.objects.get(account=account, folder="INBOX").last_uid == 2
        assert sorted(RawMessage.objects.filter(account=account).values_list("uid", flat=True)) == [1, 2]
    finally:
        _stop_thawed(a, b)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_process_frozen_inside_a_transaction_holds_up_the_new_holder_only_briefly(
        dovecot, postgres_url, tmp_path: Path):
    """Its uncommitted message would make the new holder wait to insert the same one for as long as it
    stays frozen; PostgreSQL ends that session after twice the lease (at least 10 s)."""
    account = make_account(dovecot)
    dovecot.deliver(account.email_address, make_mail(0))
    url = _database_url()
    env = buzon_env(url, tmp_path, BUZON_SYNC_LEASE="3", BUZON_SYNC_TIMEOUT="300", BUZON_HEARTBEAT="1")
    a = buzon(env, "sync", log=tmp_path / "a.log")
    b = None
    try:
        a_owner = _freeze_inside_a_store(url, dovecot, account, a)
        frozen_at = time.monotonic()
        b = buzon(env, "sync", log=tmp_path / "b.log")
        wait_for(lambda: RawMessage.objects.filter(account=account).count() == 2, 60)  # A still frozen
        assert time.monotonic() - frozen_at < 10 + 3 + 15  # the limit, the lease, B's start on this host
        a.send_signal(signal.SIGCONT)
        # its session was ended under it: the runner fails on the lost connection, or the heartbeat
        # finds the lease gone first; either way the account is let go
        wait_for(lambda: any(line in (tmp_path / "a.log").read_text(errors="replace")
                             for line in _dropped(account.pk)), 60)
        assert a.poll() is None
        assert SyncLease.objects.get(account=account).owner not in ("", a_owner)
        assert sorted(RawMessage.objects.filter(account=account).values_list("uid", flat=True)) == [1, 2]
    finally:
        _stop_thawed(a, b)
