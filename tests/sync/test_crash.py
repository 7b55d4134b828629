"""kill -9 of `buzon sync` in the middle of a download, then a restart: nothing lost, nothing twice."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import time

import pytest

from tests.support import live_run
from tests.sync.helpers import make_mail, wait_for
from tests.sync.procs import buzon, buzon_env, run_buzon, stop

CREATE = """
from buzon.mailboxes.models import EmailAccount
for address, protocol, port, delete in {accounts!r}:
    a = EmailAccount(email_address=address, incoming_enabled=True, incoming_protocol=protocol,
                     incoming_host="localhost", incoming_port=port, incoming_security="ssl",
                     initial_sync_count=0, delete_after_download=delete)
    a.set_password("secret")
    a.save()
"""


def rows(db, sql, *args):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.mark.slow
def test_kill_9_mid_download_then_restart_loses_and_duplicates_nothing(dovecot, tmp_path):
    db = tmp_path / "buzon.sqlite3"
    env = buzon_env(f"sqlite:///{db}", tmp_path, BUZON_SYNC_FETCH_CHUNK="10")
    live_run.migrated(tmp_path)
    imap_user, pop_user = dovecot.add_user(), dovecot.add_user()
    mails = [make_mail(i, size_kb=8, attachment_kb=30 if i % 10 == 0 else 0) for i in range(300)]
    for mail in mails:
        dovecot.deliver(imap_user, mail)
        dovecot.deliver(pop_user, mail)
    run_buzon(env, "shell", "-c", CREATE.format(accounts=[
        (imap_user, "imap", dovecot.imaps_port, False), (pop_user, "pop3", dovecot.pop3s_port, True)]))
    count_sql = ("SELECT a.email_address, COUNT(r.id) FROM sync_rawmessage r JOIN mailboxes_emailaccount a "
                 "ON a.id = r.account_id WHERE r.status NOT IN ('duplicate', 'unfetched') GROUP BY a.email_address")

    log = tmp_path / "sync.log"
    first = buzon(env, "sync", log=log)
    try:
        wait_for(lambda: sum(n for _, n in rows(db, count_sql)) >= 120, 60, 0.005)
    finally:
        stop(first, signal.SIGKILL)
    at_kill = dict(rows(db, count_sql))
    assert sum(at_kill.values()) < 600, "the kill came too late to test anything"
    # POP3: every message deleted on the server is one already committed here.
    assert 300 - dovecot.message_count(pop_user) <= at_kill.get(pop_user, 0)

    second = buzon(env, "sync", log=log)
    try:
        wait_for(lambda: dict(rows(db, count_sql)) == {imap_user: 300, pop_user: 300}, 90, 0.1)
        time.sleep(1)  # anything extra would show up now
    finally:
        assert stop(second) == 0  # SIGTERM stops cleanly
    assert dict(rows(db, count_sql)) == {imap_user: 300, pop_user: 300}
    want = sorted(hashlib.sha256(m).hexdigest() for m in mails)
    for user in (imap_user, pop_user):
        got = rows(db, "SELECT r.sha256 FROM sync_rawmessage r JOIN mailboxes_emailaccount a ON a.id = r.account_id "
                       "WHERE a.email_address = ? AND r.status NOT IN ('duplicate', 'unfetched')", user)
        assert sorted(g for (g,) in got) == want
    # no worker ran the pipeline: nothing was imported, so nothing left the POP3 server
    assert dovecot.message_count(pop_user) == 300
    # every stored message was handed to the pipeline exactly once, in batches
    tasks = rows(db, "SELECT args_kwargs FROM django_tasks_database_dbtaskresult")
    batches = [json.loads(args_kwargs)["args"][0] for (args_kwargs,) in tasks]
    handed = [raw_id for batch in batches for raw_id in batch]
    assert len(handed) == len(set(handed)) == 600
    assert rows(db, "SELECT COUNT(*) FROM sync_synclease WHERE owner != ''") == [(0,)]
