"""A `buzon sync` process killed with SIGKILL: the Processes page marks it dead, and another sync
process takes over its accounts within the lease expiry (and then brings their new mail in)."""

from __future__ import annotations

import signal
import time

import pytest
from django.db import connection

from buzon.core.models import ProcessHeartbeat
from buzon.sync.models import RawMessage, SyncLease
from buzon.web.ops import leases_by_process
from tests.sync.helpers import make_account, make_mail, wait_for
from tests.sync.procs import buzon, buzon_env, stop

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.slow]

LEASE_S = 4


def _database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _row(pid: int) -> ProcessHeartbeat | None:
    return ProcessHeartbeat.objects.filter(pid=pid, kind="sync").first()


def test_dead_sync_process_is_marked_and_its_accounts_taken_over(dovecot, postgres_url, tmp_path, settings,
                                                                   staff_client):
    settings.HEARTBEAT_S = 1
    accounts = [make_account(dovecot) for _ in range(6)]
    env = buzon_env(_database_url(), tmp_path, BUZON_SYNC_LEASE=str(LEASE_S), BUZON_HEARTBEAT="1")
    first = buzon(env, "sync", log=tmp_path / "a.log")
    second = None
    try:
        wait_for(lambda: SyncLease.objects.exclude(owner="").count() == 6, 60)
        second = buzon(env, "sync", log=tmp_path / "b.log")
        wait_for(lambda: _row(first.pid) is not None and _row(second.pid) is not None, 60)
        a, b = _row(first.pid), _row(second.pid)
        assert a is not None and b is not None
        assert leases_by_process([a, b]) == {a.id: 6, b.id: 0}  # the first holds them all

        first.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        first.wait(10)
        wait_for(lambda: leases_by_process([b])[b.id] == 6, LEASE_S + 10)
        taken_after = time.monotonic() - killed_at
        # the lease expiry, plus one claim round (BUZON_SYNC_REFRESH) and this machine's slack
        assert taken_after <= LEASE_S + 3, taken_after

        wait_for(lambda: not _row(first.pid).is_alive, 10)  # type: ignore[union-attr]
        html = staff_client.get("/settings/processes/").content.decode()
        assert f'data-process="{a.id}" data-alive="0"' in html
        assert f'data-process="{b.id}" data-alive="1"' in html

        for account in accounts:  # and the survivor really syncs them
            dovecot.deliver(account.email_address, make_mail(1))
        wait_for(lambda: RawMessage.objects.filter(account__in=accounts).count() == 6, 30)
    finally:
        if first.poll() is None:
            stop(first)
        if second is not None:
            assert stop(second) == 0
    row = _row(second.pid)
    assert row is not None and row.stopped_at is not None  # a clean stop says goodbye
