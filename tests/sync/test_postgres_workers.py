"""Two `buzon sync` processes on PostgreSQL share 50 accounts: each account held by one at a time,
each message fetched and stored once, and a stopped process's accounts taken over."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict

import pytest
from django.db import connection

from buzon.sync.models import KEY_ONLY, RawMessage, SyncLease
from tests.sync.helpers import make_account, make_mail, wait_for
from tests.sync.procs import buzon, buzon_env, stop

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.slow]

TAKEN = re.compile(r"lease taken account=(\d+) owner=(\S+)")
STORED = re.compile(r"stored account=(\d+) folder=\S* count=(\d+)")


def _database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def stored() -> int:
    return RawMessage.objects.exclude(status__in=KEY_ONLY).count()


def test_two_processes_share_fifty_accounts_without_double_work(dovecot, postgres_url, tmp_path):
    accounts = [make_account(dovecot) for _ in range(50)]
    for account in accounts:
        for i in range(5):
            dovecot.deliver(account.email_address, make_mail(i))
    env = buzon_env(_database_url(), tmp_path)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    first = buzon(env, "sync", "--max-accounts", "25", log=logs[0])
    second = None
    try:
        wait_for(lambda: SyncLease.objects.exclude(owner="").count() == 25, 30)
        second = buzon(env, "sync", log=logs[1])
        wait_for(lambda: stored() == 250, 60)
        owners = Counter(SyncLease.objects.exclude(owner="").values_list("owner", flat=True))
        assert sorted(owners.values()) == [25, 25]  # both worked, never on the same account

        assert stop(first) == 0  # its leases are released; the other process takes them over
        for account in accounts:
            dovecot.deliver(account.email_address, make_mail(100))
        wait_for(lambda: stored() == 300, 60)
        time.sleep(1)
        assert stored() == 300
        # every account is now held by the process still running
        assert len(set(SyncLease.objects.exclude(owner="").values_list("owner", flat=True))) == 1
        assert SyncLease.objects.exclude(owner="").count() == 50
    finally:
        stop(first)
        if second is not None:
            assert stop(second) == 0

    taken: dict[str, list[str]] = defaultdict(list)
    fetched: Counter[str] = Counter()
    for log in logs:
        text = log.read_text()
        for account_id, owner in TAKEN.findall(text):
            taken[account_id].append(owner)
        for account_id, count in STORED.findall(text):
            fetched[account_id] += int(count)
    assert len(taken) == 50
    assert all(len(set(owner_list)) <= 2 for owner_list in taken.values())
    assert sum(fetched.values()) == 300 and set(fetched.values()) == {6}  # no message stored twice
    for account in accounts:
        uids = list(RawMessage.objects.filter(account=account).values_list("uid", flat=True))
        assert sorted(uids) == list(range(1, 7))
