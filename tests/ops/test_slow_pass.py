"""Mail that arrives during a slow sync pass is stored at once, not when IDLE is next re-armed.

The lost mail of the lease-churn load runs: Dovecot rescans a maildir after a command only when
its last full check is more than 5 s old, and then announces the new message (EXISTS) inside that
command's answer. IDLE never repeats an announcement, so a runner that went from such a pass
straight into IDLE left the message on the server until the next arrival or the IDLE re-arm
(25 minutes), and the last message of an account was "not stored within 5 minutes". A pass takes
that long when a process has just taken over many accounts at once on a loaded host, or stalled.
Here the pass is held for 6 s (the runner waits on a row lock of ours) while a message arrives.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection

from buzon.sync.models import FolderCursor, RawMessage
from tests.sync.helpers import make_account, make_mail, wait_for
from tests.sync.procs import buzon, buzon_env, stop

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DOVECOT_FULL_SYNC_S = 5  # MAILBOX_FULL_SYNC_INTERVAL in Dovecot's src/lib-storage/mail-storage-private.h


def _database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _waiting_on(url: str, table: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("select count(*) from pg_stat_activity where datname = current_database() and "
                           "wait_event_type = 'Lock' and query ilike %s", (f"%{table}%",)).fetchone()
    return bool(row and row[0])


def test_mail_announced_during_a_slow_pass_is_stored_at_once(dovecot, postgres_url, tmp_path):
    account = make_account(dovecot)
    dovecot.deliver(account.email_address, make_mail(1, subject="before the pass"))
    # The mailbox was recreated since we last read it (another UIDVALIDITY): the pass must reset the
    # cursor, and waits for it while we hold its row, after EXAMINE and before its FETCH.
    FolderCursor.objects.create(account=account, folder="INBOX", uidvalidity=1, last_uid=0, initial_done=True)
    url = _database_url()
    env = buzon_env(url, tmp_path)  # IDLE re-armed after the default 25 minutes
    log = tmp_path / "sync.log"
    with psycopg.connect(url) as blocker:
        blocker.execute("select 1 from sync_foldercursor where account_id = %s for update", (account.pk,))
        process = buzon(env, "sync", log=log)
        try:
            wait_for(lambda: _waiting_on(url, "sync_foldercursor"), 60)
            time.sleep(DOVECOT_FULL_SYNC_S + 1)
            dovecot.deliver(account.email_address, make_mail(2, subject="during the pass"))
            blocker.rollback()
            wait_for(lambda: RawMessage.objects.filter(account=account, subject="before the pass").exists(), 30)
            arrived = time.monotonic()
            # The runner is now in IDLE, or would be: Dovecot will not announce this message again.
            wait_for(lambda: RawMessage.objects.filter(account=account, subject="during the pass").exists(), 15)
            assert time.monotonic() - arrived < 15
        finally:
            stop(process)
    assert sorted(RawMessage.objects.filter(account=account).values_list("uid", flat=True)) == [1, 2]
